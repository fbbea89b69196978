"""Thin Luigi tasks over batchml: parameters, requires(), output() and a run() that calls the core."""
