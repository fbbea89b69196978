"""Models: pins, the MLflow registry, runtimes and ONNX I/O, training, and what makes a registered model."""
