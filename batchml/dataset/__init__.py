"""A date's rows: the dataset contract, sources, validation and extraction, features and labels through the hooks."""
