"""Errors the pipeline tells apart: a missing input is waited for, bad data is not retried."""


class BatchmlError(Exception):
    """Base class of every error raised on purpose by batchml."""


class MissingInput(BatchmlError):
    """The source has no data for a date (yet)."""


class IncompleteInput(BatchmlError):
    """Input that is there but looks cut short: a torn last line, fewer rows than its marker says."""


class SchemaError(BatchmlError):
    """Input that cannot be validated at all: unreadable file, missing column."""


class RejectedShareTooHigh(BatchmlError):
    """Too many rows of a date broke the schema contract."""


class IntegrityError(BatchmlError):
    """An artifact or partition does not match what was recorded for it."""


class HookError(BatchmlError):
    """A project's hook could not be imported, raised, or returned something unusable."""


class ConfigError(BatchmlError):
    """A setting that cannot work: a wrong value, a missing file, an unknown name."""
