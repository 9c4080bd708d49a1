"""Errors a user can act on: the CLI prints their message and exits non-zero."""


class LeadflowError(Exception):
    """A problem the user can fix; its message is one clear sentence (or a list of them)."""

    exit_code = 1


class ConfigError(LeadflowError):
    """The configuration is invalid; the message lists every error with file, line and key."""

    exit_code = 2


class WarehouseUnavailable(LeadflowError):
    """The warehouse cannot be reached."""

    exit_code = 3
