"""The epoch registry (client ids are ``epoch << 18 | counter``, epochs issued once per account and
recorded per instance name), ``reset``'s retirement of a name's epochs, and the checks on a live
start from an empty state."""
from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

from ._files import REGISTRY, AccountError, _mutex, _read_json, _write_atomic, account_dir

if TYPE_CHECKING:
    from ..exchange.base import Exchange
    from .claim import Claim

log = logging.getLogger("gridbot")


EPOCH_SHIFT = 18  # client id = epoch << 18 | counter: 14 bits of epoch, 18 of counter, a u32


MAX_EPOCH = (1 << (32 - EPOCH_SHIFT)) - 1  # 16383; epoch 0 is never issued (ids of older states)


PAPER_EPOCH = 1  # each paper instance is alone on its simulated account



def epoch_of(client_id: int) -> int:
    return client_id >> EPOCH_SHIFT



def _load_registry(d: Path) -> dict[str, Any]:
    data = _read_json(d / REGISTRY)
    if data is None:
        return {"version": 1, "next_epoch": 1, "instances": {}}
    if not isinstance(data, dict) or not isinstance(data.get("instances"), dict) \
            or not isinstance(data.get("next_epoch"), int):
        raise AccountError(f"{d / REGISTRY} is not an epoch registry; restore it from a backup")
    return data



def _entry(reg: dict[str, Any], name: str) -> dict[str, Any]:
    e = reg["instances"].setdefault(name, {})
    e.setdefault("epochs", [])
    e.setdefault("retired", [])
    return e



@contextmanager
def _registry(d: Path) -> Iterator[dict[str, Any]]:
    """The registry under the account mutex; written back (atomically) if the block changed it."""
    with _mutex(d):
        reg = _load_registry(d)
        before = json.dumps(reg, sort_keys=True)
        yield reg
        if json.dumps(reg, sort_keys=True) != before:
            _write_atomic(d / REGISTRY, reg)



def history(root: Path, exchange: str, account: str, name: str) -> dict[str, Any]:
    """This name's registry entry (epochs, retired, cancel_on_start), empty if none; no writes."""
    d = account_dir(root, exchange, account)
    data = _load_registry(d) if d.is_dir() else {"instances": {}}
    e = data["instances"].get(name) or {}
    return {"epochs": list(e.get("epochs", [])), "retired": list(e.get("retired", [])),
            "cancel_on_start": e.get("cancel_on_start")}



def mark_reset(root: Path, exchange: str, account: str, name: str, symbol: str) -> list[int]:
    """``gridbot reset NAME``: retire the name's epochs (never issued again, so never confused with
    a new state's ids) and ask its next start to cancel their open orders on ``symbol``.
    Returns the epochs retired by this call (none: nothing recorded, nothing changed)."""
    d = account_dir(root, exchange, account)
    if not d.is_dir():
        return []
    with _registry(d) as reg:
        e = reg["instances"].get(name)
        if not e or not e.get("epochs"):
            return []
        retired = sorted(e["epochs"])
        e["retired"] = sorted(set(e.get("retired", [])) | set(retired))
        e["epochs"] = []
        old = e.get("cancel_on_start") or {}
        pending = sorted(set(old.get("epochs", [])) | set(retired)) if old.get("symbol") == symbol else retired
        if old and old.get("symbol") != symbol:
            log.warning("%s: an earlier reset's cancels on %s are superseded", name, old.get("symbol"))
        e["cancel_on_start"] = {"symbol": symbol, "epochs": pending}
        return retired



def state_is_empty(store: Any) -> bool:
    """No strategy snapshot, no reserved epoch, no order and no fill: a state that is missing or was
    emptied (a state whose epoch was reserved but which stopped before its grid existed is not)."""
    return (store.get("strategy") is None and store.get("reserved_epoch") is None  # runner.RESERVED_EPOCH
            and not store.orders() and not store.fill_count())



def lost_state_problem(name: str, entry: dict[str, Any], open_client_ids: Optional[list[int]]) -> Optional[str]:
    """Why a live instance with an empty state must not start (None: it may). Pure.

    ``entry``: its registry history; ``open_client_ids``: client ids of the open orders on its
    symbol (None when not looked up: no epoch was ever recorded for it).
    """
    if entry["epochs"]:
        return (f"the state of {name} is missing or empty, but it traded before with client-id epochs "
                f"{_epochs(entry['epochs'])}: its orders and fills would be lost or adopted blindly; "
                f"run `gridbot reset {name}` to start it clean")
    mine = set(entry["retired"])
    if open_client_ids and not entry.get("cancel_on_start"):
        stray = sorted(c for c in open_client_ids if epoch_of(c) in mine)
        if stray:
            return (f"the state of {name} is missing or empty, but {len(stray)} of its earlier orders are still "
                    f"open (client ids {', '.join(map(str, stray[:5]))}{'…' if len(stray) > 5 else ''}); "
                    f"run `gridbot reset {name}` to cancel them and start clean")
    return None



def _epochs(epochs: list[int]) -> str:
    return ", ".join(map(str, epochs[:8])) + ("…" if len(epochs) > 8 else "")


async def check_fresh_start(claim: Claim, ex: "Exchange") -> None:
    """A live instance starting from an empty state: refuse if that state had a past (AccountError),
    else carry out a pending reset (cancel the old epochs' open orders), then reserve the new
    state's epoch so the registry knows this name has state from now on."""
    from ..errors import OrderRejected

    if not claim.live:
        return
    entry = claim.history()
    marker = entry.get("cancel_on_start")
    open_ids = None
    if not entry["epochs"] and entry["retired"] and not marker:
        open_ids = [o.client_id for o in await ex.open_orders(claim.symbol)]
    problem = lost_state_problem(claim.name, entry, open_ids)
    if problem:
        raise AccountError(problem)
    if marker:
        symbol, epochs = marker["symbol"], set(marker["epochs"])
        old = [o for o in await ex.open_orders(symbol) if epoch_of(o.client_id) in epochs]
        for o in old:
            try:
                await ex.cancel(symbol, o.client_id)
            except OrderRejected:
                pass  # gone meanwhile (filled or cancelled)
        log.warning("reset: cancelled %d open order(s) of the earlier state on %s (epochs %s); starting clean",
                    len(old), symbol, _epochs(sorted(epochs)))
        claim.clear_cancel_marker()
    claim.reserve_epoch()
