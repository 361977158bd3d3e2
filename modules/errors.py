"""The project's user-facing errors.

`main.py` turns any `NiveshiError` into one line on stderr and a non-zero exit, with no
traceback (set `NIVESHI_DEBUG=1` to see it). Anything else is a bug and keeps its traceback.
"""


class NiveshiError(Exception):
    """An error the user can fix: bad data, bad config, a run that had to stop."""

    exit_code = 2


class DataError(NiveshiError):
    """Input data is missing or malformed. The message names the file and the problem."""


class ConfigError(NiveshiError):
    """A configuration value is invalid or inconsistent with the data."""


class NonFiniteError(NiveshiError):
    """Training produced NaN/Inf and was stopped; the message names the checkpoint saved."""

    exit_code = 3
