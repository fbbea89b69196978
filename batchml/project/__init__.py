"""A user's project as a whole: batchml init (a contract inferred from a sample, the starter files)."""
