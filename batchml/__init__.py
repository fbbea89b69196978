"""batchml: daily batch scoring, monitoring and retraining. The core has no Luigi import."""

__version__ = "0.1.0"
