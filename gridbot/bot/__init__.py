"""The bot process: one instance's grid, from ``gridbot run NAME`` to its exit code.

The strategy (``gridbot/strategy.py``) is pure; this package moves events in and intents out,
writing each intent to the store *before* the exchange call. One module per job:

    main.py         process entry: main(NAME) -> exit code (0 / 1 / 78), _amain, run_guarded, state_dir_for;
                    fresh_start_step (a live empty state's account check, run by start_up)
    core.py         Bot: the class that joins the parts below
    base.py         BotBase: the state every part shares, created in one __init__; the tunable timings
    loop.py         run: signals, one cycle per exchange event, held and idle levels' backoff, watchdog, shutdown
    startup.py      fresh-start check, open (or re-grid) the state; retry until the exchange answers, READY=1
                    degraded after 20 s
    reconcile.py    make store and strategy agree with the venue (start, after errors, every 30 s)
    orders.py       send intents, read every answer, poll fills; which venue orders are ours
    persist.py      apply: events -> strategy -> store, in one transaction (the write-ahead guarantee)
    failures.py     outages (one line per kind) and a refused API key (halt, probe every 60 s)
    reload.py       SIGHUP: soft fields now, grid changes at the next restart
    status.py       STATUS=, watchdog pings, the figures file, health reasons, /api/status snapshot
    params.py       config + market -> strategy parameters (pure; tests use it without a Bot)
    paper_state.py  a paper instance's epochs and saved simulated venue

Imports run one way, main -> core -> the parts -> base; no part imports another part's class
(loop and startup read a few constants and helpers from failures, status, orders and params).
``gridbot/runner.py`` is the old name, kept as a shim for ``python -m gridbot.runner NAME`` and
existing imports.

**Why mixins, not collaborator objects.** The parts are one object's jobs, not separate objects:
all of them read and write the same strategy state, store, exchange, health and progress clock,
and they call each other in both directions (``execute`` feeds answers to ``apply``; ``reconcile``
calls ``execute`` and ``poll_fills``; ``start_up`` calls ``reconcile`` and ``cycle``; ``cycle``
calls them all). As collaborators each would hold references to the others and to a shared context
that would be the Bot again. So ``Bot`` stays one object, as bbgo's grid2 ``Strategy`` is one struct
whose methods live in files by job. Every part subclasses ``base.BotBase``, which creates all the
shared attributes in one ``__init__``; ``core.Bot`` only lists the parts. Callers (tests,
``_failsafe``) keep using one ``bot``, and a test can still replace one method on it.

Ownership on a shared account: client ids come from epochs handed out by ``new_epoch`` (see
strategy.py); a fill or an open order counts only if it matches an order row we wrote (by the
venue's order id where known, else client id + symbol), and fills are read from ``started_ms``.

Healing on a real venue (issue 9): every placement answer is read (a 200 ``Expired`` is a
rejection; a market order that ended short is settled, so a rebalance never sticks); refused levels
are held and released with backoff (5 s doubling to 5 min), never given up; idle levels (a short
rebalance's sells) are refilled at the reconciles (``Refill``; backoff doubling to 30 min); a reconcile every
``reconcile_interval_s`` compares live orders with the venue's open orders and re-reads an hour of
fills; market rules (price band, book state) are re-read with it and keep levels waiting instead of
burning rejections. Exchange failures log one line per kind of failure per outage, never a
traceback. What the bot is not doing that it should is its *health* (``health.py``).

Lean on purpose (20 bots on a small VPS): for paper instances neither OpenSSL (``ssl``,
``_hashlib``) nor typer/rich/pystemd/httpx/cryptography are imported, and asyncio is imported only
after the config said whether TLS will be needed (main.py). No module here imports asyncio at load.
"""
from __future__ import annotations

import sys

if "hashlib" not in sys.modules:  # stdlib falls back to its builtin hashes; saves ~3 MB of libcrypto
    sys.modules.setdefault("_hashlib", None)  # type: ignore[arg-type]

from .core import Bot  # noqa: E402
from .main import EX_CONFIG, EX_FAIL, EX_OK, main, run_guarded  # noqa: E402

__all__ = ["Bot", "main", "run_guarded", "EX_OK", "EX_FAIL", "EX_CONFIG"]
