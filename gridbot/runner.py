"""The bot process under its old name: ``python -m gridbot.runner NAME`` and ``gridbot.runner.main``.

The code lives in ``gridbot/bot/`` (one module per job; see its docstring). This shim keeps the
entry point that the CLI's ``gridbot run``, the tests and the bench start, and the names they import.
"""
from __future__ import annotations

import sys

from .bot import EX_CONFIG, EX_FAIL, EX_OK, Bot, main, run_guarded
from .bot.main import RESERVED_EPOCH, state_dir_for
from .bot.orders import START_SLACK_MS
from .bot.paper_state import paper_fingerprint, paper_venue, store_epochs
from .bot.params import build_params, thresholds_fit
from .models import grid_fingerprint

__all__ = ["Bot", "main", "run_guarded", "EX_OK", "EX_FAIL", "EX_CONFIG", "RESERVED_EPOCH", "state_dir_for",
           "START_SLACK_MS", "paper_fingerprint", "paper_venue", "store_epochs", "build_params",
           "thresholds_fit", "grid_fingerprint"]

if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m gridbot.runner NAME", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
