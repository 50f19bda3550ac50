"""The one exception type for mistakes a user can make (bad config, bad data, unknown ref).

The CLI prints these as a single line and exits 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class CamelidError(Exception):
    """A user-fixable problem. The message says what is wrong, where, and what to do."""


class ConfigError(CamelidError):
    """pipelines.yaml or a key=value override is invalid."""


class RegistryError(CamelidError):
    """A registry reference cannot be resolved, or a publish was refused."""


class DataError(CamelidError):
    """A data file or record is malformed (the message names file, line and field)."""


class TrainingDiverged(CamelidError):
    """A loss, reward, gradient or log-prob became NaN/inf; training stopped and nothing was published."""
