"""The partition engine: a date's features scored on Dask with the pinned model."""
