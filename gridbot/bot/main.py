"""The bot process's entry: ``main(NAME)`` -> exit code (``gridbot run NAME``, the unit's ExecStart).

Order of work: load and validate the config, claim the account (one symbol per account, its rate
budget), lock and open the state, build the exchange, then hand over to ``Bot.run`` through
``run_guarded``. A live instance whose state is empty gets a ``fresh_start_step`` (the account's
fresh-start check, then the new state's epoch reserved in the store) that the bot's own start-up runs
before the state is opened, in its retry loop: an exchange outage then is waited out with READY=1
(degraded) after the grace, like any start during an outage; a lost state still ends the process
with 78. Every way out is one of three exit codes, one log line each, never a traceback for
an expected failure:

    0   EX_OK      clean stop (SIGTERM/SIGINT): on_stop applied
    1   EX_FAIL    crashed, state directory unusable or locked, a transient account error: systemd restarts it
    78  EX_CONFIG  bad config, credentials or infeasible grid (EX_CONFIG): ``RestartPreventExitStatus=78``
                   stops a restart loop that cannot heal

Lean on purpose (20 bots on a small VPS): asyncio is imported only after the config said whether TLS
will be needed, so a paper bot blocks ``ssl`` first (and the package blocks ``_hashlib``).
"""
from __future__ import annotations

import logging
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Awaitable, Callable

from .. import _statelock
from ..config import config_dir, load
from ..errors import EXIT_BOT_CONFIG, ConfigError, CredentialsError, SnapshotError, UsageError
from ..grid import GridError
from ..models import GridConfig
from ..notify import Notifier, setup_logging
from ..store import DB_NAME, Store, StoreError
from .core import Bot
from .loop import EX_OK, early_signals
from .paper_state import paper_venue, store_epochs

if TYPE_CHECKING:
    from ..account import Claim
    from ..exchange.base import Exchange

EX_FAIL, EX_CONFIG = 1, EXIT_BOT_CONFIG
RESERVED_EPOCH = "reserved_epoch"  # store key: see account.state_is_empty
log = logging.getLogger("gridbot")


def state_dir_for(name: str, user: bool = False) -> Path:
    """$STATE_DIRECTORY (systemd StateDirectory=gridbot/%i), else $GRIDBOT_STATE_DIR/NAME, else the
    instance's own state directory (/var/lib/gridbot/NAME; with --user ~/.local/state/gridbot/NAME),
    never ./state in the working directory: a run by hand meets the service's lock there."""
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env.split(":")[0])
    base = os.environ.get("GRIDBOT_STATE_DIR")
    return Path(base) / name if base else _statelock.default_state_dir(name, user)


def main(name: str, user: bool = False) -> int:
    """Run instance ``name`` until SIGTERM; return the process exit code."""
    # until the loop owns the signals: remember a stop, ignore a reload (the config is read fresh anyway)
    signal.signal(signal.SIGTERM, lambda sig, _: early_signals.append(sig))
    signal.signal(signal.SIGINT, lambda sig, _: early_signals.append(sig))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    setup_logging(logging.DEBUG if os.environ.get("GRIDBOT_DEBUG") else logging.INFO)
    cfg_dir = config_dir()
    try:
        try:
            cfg = load(name, cfg_dir)
        except ConfigError:  # an editor's truncate-then-write caught mid-way: look once more
            time.sleep(1.0)
            cfg = load(name, cfg_dir)
    except (ConfigError, UsageError) as exc:
        log.error("not starting: %s", exc)
        return EX_CONFIG
    if cfg.exchange != "paper":  # it will hold API keys: never in a core dump
        from .._nodump import forbid_core_dumps

        forbid_core_dumps()
    if cfg.exchange == "paper":  # asyncio imports ssl eagerly; a paper bot never speaks TLS
        sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]
    import asyncio

    from ..account import AccountError, accounts_root, claim

    state_dir = state_dir_for(name, user)
    try:  # the account's rules, before anything is opened: one symbol per account, its rate budget
        held = claim(name, cfg, accounts_root(state_dir.parent))
        try:
            return asyncio.run(_amain(name, cfg, state_dir, cfg_dir, held))
        finally:
            held.release()
    except _statelock.StateLocked as exc:
        log.error("not starting: %s", exc)
        return EX_FAIL
    except AccountError as exc:
        log.error("not starting: %s", exc)
        return EX_FAIL if exc.transient else EX_CONFIG
    except SnapshotError as exc:  # saved by another gridbot version: refused, never guessed at
        log.error("not starting: %s (state %s); run the gridbot that wrote it, or start over with "
                  "`gridbot reset %s`", exc, state_dir / DB_NAME, name)
        return EX_CONFIG
    except (GridError, CredentialsError, ConfigError) as exc:
        log.error("not starting: %s", exc)
        return EX_CONFIG
    except (StoreError, sqlite3.Error) as exc:  # read-only or full state dir: one line, not a traceback
        log.error("state directory %s unusable: %s", state_dir, str(exc).splitlines()[0] if str(exc) else exc)
        return EX_FAIL
    except KeyboardInterrupt:
        return EX_OK
    except Exception:
        log.exception("crashed")
        return EX_FAIL


async def _amain(name: str, cfg: GridConfig, state_dir: Path, cfg_dir: Path, claim: "Claim") -> int:
    from ..account import state_is_empty
    from ..exchange.factory import open_exchange

    try:  # held until exit: one bot per state directory
        lock = _statelock.acquire(state_dir, name, by_hand="STATE_DIRECTORY" not in os.environ)
    except OSError as exc:
        raise StoreError(f"cannot lock {state_dir}: {exc.strerror or exc}") from None
    store = Store.open(state_dir)
    try:
        # GRIDBOT_PAPER_LATENCY_MS: simulated round trip of paper calls (realism; crash tests use it)
        latency = float(os.environ.get("GRIDBOT_PAPER_LATENCY_MS", "0") or 0) / 1000
        saved, ids = paper_venue(store, cfg) if cfg.exchange == "paper" else (None, None)
        ex = open_exchange(cfg, state_dir, saved=saved, save=lambda d: store.put("paper", d), latency_s=latency)
        if ids:  # paper only: a rebuilt venue continues the old one's trade and order numbering
            ex.venue.continue_ids(*ids)  # type: ignore[attr-defined]
        # a lost state never starts silently; a reset's old orders are cancelled first (in start_up)
        fresh = fresh_start_step(claim, ex, store) if claim.live and state_is_empty(store) else None
        # paper: the simulated venue is the instance's own account; live: the account's epoch registry
        new_epoch = claim.new_epoch if claim.live else store_epochs(store)
        bot = Bot(name, cfg, store, ex, Notifier(), cfg_dir, new_epoch, fresh_start=fresh)
        return await run_guarded(bot)
    finally:
        store.close()
        os.close(lock)


async def run_guarded(bot: Bot) -> int:
    """``bot.run()``; if the state stops being writable (disk full, read-only), no further order can
    be recorded first, so none is placed: apply on_stop straight through the venue and fail."""
    try:
        return await bot.run()
    except (StoreError, sqlite3.Error) as exc:
        from .._failsafe import stop_without_store

        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if bot.state is None:  # failed before the state was opened (the fresh-start step): nothing placed
            await bot.ex.close()
            raise StoreError(first) from None
        bot.stopping = True
        bot.notifier.stopping("state not writable; stopping")
        done = await stop_without_store(bot)
        raise StoreError(f"{first}; stopped placing orders, {done}") from None


def fresh_start_step(claim: "Claim", ex: "Exchange", store: Store) -> Callable[[], Awaitable[None]]:
    """The step a live instance with an empty state runs before its first ``open_state`` (``Bot``'s
    ``fresh_start``; ``start_up`` retries it while the exchange cannot be reached): the account's
    fresh-start check (AccountError for a lost state; a pending reset's old orders cancelled), then
    the new state's epoch reserved in the store."""
    from ..account import check_fresh_start

    async def step() -> None:
        await check_fresh_start(claim, ex)
        # the epoch is reserved for this state from now on: a stop before the grid is written must
        # not make the next start look like a lost state (the registry already lists the epoch)
        store.put(RESERVED_EPOCH, claim.reserve_epoch())

    return step
