"""The exception tree. Every error a user can cause or meet is one of these.

    GridbotError                 base; carries a one-line, user-facing message  (exit 1)
    ├── UsageError               bad instance name or flag combination      (exit 2)
    ├── PermissionDenied         not root and not allowed by polkit         (exit 4)
    ├── InstanceNotFound         no config and no unit for this name        (exit 5)
    ├── ConfigError              malformed, invalid or infeasible config    (exit 6)
    │   └── SnapshotError        saved state in an unknown format           (bot: exit 78)
    ├── NotRunning               the verb needs a running instance          (exit 7)
    ├── SystemdUnavailable       no systemd / no D-Bus reachable            (exit 1)
    ├── NotInstalled             gridbot's units are not installed          (exit 1)
    ├── JobFailed                a start/stop/restart job did not succeed   (exit 1)
    ├── CredentialsError         API keys missing or unreadable             (exit 6)
    └── ExchangeError            the venue refused or failed a request
        ├── OrderRejected        an order was refused (funds, price, size)
        └── AuthError            the venue refused the API key or signature

Callers raise these with a message fit to print as-is; ``cli.main`` exits with the class's code.
``EXIT_CODES`` is the one table of every exit code (the CLI's and the bot's): ``gridbot --help``
and the README print it, and a unit test keeps the classes and the table in step.
"""
from __future__ import annotations

# The one exit-code table, close to LSB init-script codes (systemd.exec(5)) and systemctl.
# (code, who, meaning). The CLI's codes first, then the bot's (`gridbot run`, the unit's ExecStart).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_RUNNING_STATUS = 0, 1, 2, 3
EXIT_PERMISSION, EXIT_NO_INSTANCE, EXIT_CONFIG, EXIT_NOT_RUNNING = 4, 5, 6, 7
EXIT_BOT_CONFIG, EXIT_INTERRUPTED = 78, 130
EXIT_CODES: tuple[tuple[int, str, str], ...] = (
    (EXIT_OK, "cli", "success (status: the instance(s) are running)"),
    (EXIT_FAILED, "cli", "a job failed, systemd unreachable, journalctl's own error (logs), or an internal error"),
    (EXIT_USAGE, "cli", "bad usage: unknown option, bad name, clashing flags, no terminal to ask on"),
    (EXIT_NOT_RUNNING_STATUS, "cli", "status: an instance is not running (stopped or failed), as systemctl"),
    (EXIT_PERMISSION, "cli", "permission denied: needs root, or gridbot-ops / systemd-journal membership"),
    (EXIT_NO_INSTANCE, "cli", "no such instance: no config and no unit, on every verb"),
    (EXIT_CONFIG, "cli", "invalid config: malformed, invalid, infeasible, clashing, or live without credentials"),
    (EXIT_NOT_RUNNING, "cli", "the verb needs a running instance (reload of a stopped one)"),
    (EXIT_INTERRUPTED, "cli", "interrupted (Ctrl-C)"),
    (0, "bot", "clean stop (SIGTERM/SIGINT): on_stop applied"),
    (1, "bot", "crashed or state directory unusable: systemd restarts it"),
    (EXIT_BOT_CONFIG, "bot", "bad config, credentials, infeasible grid or saved state in an unknown format: "
                             "not restarted (RestartPreventExitStatus)"),
)


def exit_table_text() -> str:
    """The table as plain text lines (for --help's epilog and the README)."""
    return "\n".join(f"{code:>4}  {who:<3}  {meaning}" for code, who, meaning in EXIT_CODES)


class GridbotError(Exception):
    """Base class: ``str(exc)`` is a one-line message for the user."""

    exit_code = 1


class UsageError(GridbotError):
    """The command line itself is wrong (bad name, clashing flags)."""

    exit_code = EXIT_USAGE


class ConfigError(GridbotError):
    """A config file is malformed, fails validation, or describes a grid that cannot trade."""

    exit_code = EXIT_CONFIG


class SnapshotError(ConfigError):
    """A saved state (strategy or paper venue snapshot) is in a format this version cannot read:
    an unknown version is refused, never guessed at (restarting would not heal it)."""


class InstanceNotFound(GridbotError):
    """Neither a config nor a loaded unit exists for this instance (the same code on every verb)."""

    exit_code = EXIT_NO_INSTANCE


class PermissionDenied(GridbotError):
    """systemd, polkit or the file system refused: the message names the missing right."""

    exit_code = EXIT_PERMISSION


class NotRunning(GridbotError):
    """The verb needs a running instance (``reload`` of a stopped one)."""

    exit_code = EXIT_NOT_RUNNING


class SystemdUnavailable(GridbotError):
    """No systemd manager or D-Bus socket to talk to."""

    exit_code = 1


class NotInstalled(GridbotError):
    """systemd has no ``gridbot@.service`` template: gridbot itself is not installed (or was removed)."""

    exit_code = 1


class JobFailed(GridbotError):
    """A systemd job finished with a result other than ``done``."""

    exit_code = 1


class CredentialsError(GridbotError):
    """API credentials are missing, unreadable or malformed."""

    exit_code = EXIT_CONFIG


class ExchangeError(GridbotError):
    """The exchange refused or failed a request."""


class OrderRejected(ExchangeError):
    """An order was refused (insufficient funds, bad price or size, post-only cross)."""


class AuthError(ExchangeError):
    """The venue refused the credentials (unknown key, bad signature, no permission).

    Not an order rejection: nothing about the order was judged, and every further request will
    fail the same way until the keys (or the host clock) are fixed.
    """
