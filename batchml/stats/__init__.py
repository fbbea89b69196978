"""Numbers on frames, no I/O: distribution profiles, metrics, drift, performance estimators."""
