"""The exception tree. Every error a user can cause or meet is one of these.

    GridbotError                 base; carries a one-line, user-facing message
    ├── UsageError               bad instance name or flag combination      (exit 2)
    ├── ConfigError              missing, malformed or invalid config       (exit 6)
    ├── InstanceNotFound         no config and no unit for this name        (exit 4? see cli)
    ├── PermissionDenied         not root and not allowed by polkit         (exit 4)
    ├── SystemdUnavailable       no systemd / no D-Bus reachable            (exit 1)
    ├── JobFailed                a start/stop/restart job did not succeed   (exit 1)
    ├── CredentialsError         API keys missing or unreadable             (exit 6)
    └── ExchangeError            the venue refused or failed a request
        ├── OrderRejected        an order was refused (funds, price, size)
        └── AuthError            the venue refused the API key or signature

Callers raise these with a message fit to print as-is; ``cli.main`` maps them to exit codes.
"""
from __future__ import annotations


class GridbotError(Exception):
    """Base class: ``str(exc)`` is a one-line message for the user."""

    exit_code = 1


class UsageError(GridbotError):
    """The command line itself is wrong (bad name, clashing flags)."""

    exit_code = 2


class ConfigError(GridbotError):
    """A config file is missing, malformed or fails validation."""

    exit_code = 6


class InstanceNotFound(GridbotError):
    """Neither a config nor a loaded unit exists for this instance."""

    exit_code = 4


class PermissionDenied(GridbotError):
    """systemd (or polkit) refused: needs root, polkit grant, or --user."""

    exit_code = 4


class SystemdUnavailable(GridbotError):
    """No systemd manager or D-Bus socket to talk to."""

    exit_code = 1


class JobFailed(GridbotError):
    """A systemd job finished with a result other than ``done``."""

    exit_code = 1


class CredentialsError(GridbotError):
    """API credentials are missing, unreadable or malformed."""

    exit_code = 6


class ExchangeError(GridbotError):
    """The exchange refused or failed a request."""


class OrderRejected(ExchangeError):
    """An order was refused (insufficient funds, bad price or size, post-only cross)."""


class AuthError(ExchangeError):
    """The venue refused the credentials (unknown key, bad signature, no permission).

    Not an order rejection: nothing about the order was judged, and every further request will
    fail the same way until the keys (or the host clock) are fixed.
    """
