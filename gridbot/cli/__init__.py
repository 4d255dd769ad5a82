"""The ``gridbot`` command: Typer app, ``main()`` and the one exit door.

Every error a user can cause is a ``GridbotError`` subclass carrying a one-line message; ``main``
prints it as ``gridbot: error: …`` on stderr and exits with the class's code (LSB-style, as
systemd.exec(5) lists them: 2 usage, 4 no permission / no such instance, 6 not configured).
Tracebacks only with GRIDBOT_DEBUG=1: the bot process holds API keys in memory.
"""
from __future__ import annotations

import os
import sys

EXIT_CONFIG_RUNNER = 78  # `gridbot run` on a bad config: the unit's RestartPreventExitStatus


def _run_fast(argv: list[str]) -> int | None:
    """``gridbot run NAME`` is every bot's ExecStart: skip Typer/Click/rich (≈15 MB, ≈100 ms)."""
    if len(argv) == 2 and argv[0] == "run" and not argv[1].startswith("-"):
        from ..runner import main as run_main

        return run_main(argv[1])
    return None


def main() -> None:
    argv = sys.argv[1:]
    code = _run_fast(argv)
    if code is not None:
        sys.exit(code)
    from ..errors import GridbotError
    from .commands import app

    try:
        app(prog_name="gridbot")
    except GridbotError as exc:
        print(f"gridbot: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("gridbot: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # a bug, not a user mistake: one line unless asked for more
        if os.environ.get("GRIDBOT_DEBUG"):
            raise
        print(f"gridbot: internal error: {type(exc).__name__}: {exc} (GRIDBOT_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        sys.exit(1)
