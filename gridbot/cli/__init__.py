"""The ``gridbot`` command: Typer app, ``main()`` and the one exit door.

Every error a user can cause is a ``GridbotError`` subclass carrying a one-line message; ``main``
prints it as ``gridbot: error: …`` on stderr and exits with the class's code, from the one table
``gridbot.errors.EXIT_CODES`` (LSB-style, as systemd.exec(5) lists them: 2 usage, 4 no permission,
5 no such instance, 6 invalid config, 7 not running; shown by ``gridbot --help``).
Tracebacks only with GRIDBOT_DEBUG=1: the bot process holds API keys in memory.
"""
from __future__ import annotations

import os
import sys

EXIT_CONFIG_RUNNER = 78  # `gridbot run` on a bad config: the unit's RestartPreventExitStatus (errors.EXIT_BOT_CONFIG)


def _run_fast(argv: list[str]) -> int | None:
    """``gridbot run NAME`` is every bot's ExecStart: skip Typer/Click/rich (≈15 MB, ≈100 ms)."""
    if len(argv) == 2 and argv[0] == "run" and not argv[1].startswith("-"):
        from ..runner import main as run_main

        return run_main(argv[1])
    return None


def _redact(message: str, argv: list[str], words: set[str]) -> str:
    """Click quotes the offending argument ("Got unexpected extra argument (…)", "Invalid value
    for '--timeout': '…'"): a secret pasted on the command line must never be echoed back. Any
    argument that is not a command or option name is shown as '…'."""
    for tok in sorted(set(argv), key=len, reverse=True):
        if "=" in tok and tok.startswith("-"):
            opt, _, val = tok.partition("=")
            if val:
                message = message.replace(val, "…")
            continue
        if tok in words or tok.startswith("-") or len(tok) < 2:
            continue
        message = message.replace(tok, "…")
    return message


def _words(cmd) -> set[str]:
    out = {cmd.name or ""}
    for sub in getattr(cmd, "commands", {}).values():
        out |= _words(sub)
    for p in getattr(cmd, "params", []):
        out |= set(getattr(p, "opts", [])) | set(getattr(p, "secondary_opts", []))
    return out


def _hoist_user(argv: list[str]) -> list[str]:
    """``--user`` is a global option; accept it after the command too (``gridbot list --user``).
    Only before a ``--`` (after it, everything is a name)."""
    end = argv.index("--") if "--" in argv else len(argv)
    if "--user" not in argv[1:end]:
        return argv
    head = [a for a in argv[:end] if a != "--user"]
    return ["--user", *head, *argv[end:]]


def main() -> None:
    argv = sys.argv[1:]
    code = _run_fast(argv)
    if code is not None:
        sys.exit(code)
    import typer.main
    from typer import exceptions as texc
    from typer._click import exceptions as click  # typer >= 0.28 vendors click (pinned in pyproject)

    sys.argv[1:] = _hoist_user(argv)
    from ..errors import GridbotError
    from .commands import app

    try:
        rv = app(prog_name="gridbot", standalone_mode=False)
    except GridbotError as exc:
        print(f"gridbot: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except click.NoArgsIsHelpError as exc:  # bare `gridbot` or `gridbot credentials`: the help, not an "error"
        print(exc.format_message())
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        words = _words(typer.main.get_command(app))
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        print(f"gridbot: error: {_redact(exc.format_message(), argv, words)}{hint}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        print(f"gridbot: error: {exc.format_message()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, texc.Abort):
        print("gridbot: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # a bug, not a user mistake: one line unless asked for more
        if os.environ.get("GRIDBOT_DEBUG"):
            raise
        print(f"gridbot: internal error: {type(exc).__name__} (GRIDBOT_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
