"""Named errors. ``cli.py`` turns every LogwatchError into ``Error: <message>`` and exit code 1."""


class LogwatchError(Exception):
    """Base class of every error logwatch reports to a user without a stack trace."""


class ConfigError(LogwatchError):
    """A configuration value, file or flag is invalid."""


class SourceError(LogwatchError):
    """The log root (or a file in it) cannot be used."""


class StorageError(LogwatchError):
    """The database cannot be reached, or its state is unusable."""


class StateCorruptError(StorageError):
    """Stored state is inconsistent; logwatch refuses to guess rather than re-read silently."""


class AlreadyRunningError(LogwatchError):
    """Another logwatch daemon already holds the lock on this database."""


class NotFittedError(LogwatchError, ValueError):
    """A detector was asked to score before it was fitted."""
