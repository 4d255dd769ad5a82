"""A paper instance's own bookkeeping in its store: its epochs, and its saved simulated venue.

A paper bot's simulated venue is its own account, so its store is its epoch registry
(``store_epochs``), and the venue is saved in the store and restored on start (``paper_venue``) unless
the paper settings changed, in which case it is rebuilt. Live instances use neither.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Optional

from .. import strategy as st
from ..models import GridConfig
from ..store import CANCELLED, OPEN, PENDING, Store

log = logging.getLogger("gridbot")


def paper_fingerprint(cfg: GridConfig) -> dict[str, Any]:
    """What the simulated venue is built from: market rules, fees, balances, price model, symbol."""
    return {"symbol": cfg.symbol, "fee_rate": str(cfg.fee_rate), "paper": cfg.paper.model_dump(mode="json")}


def store_epochs(store: Store) -> Callable[[], int]:
    """Epochs for a paper instance: its simulated venue is its own account, so the store is the registry."""
    def new_epoch() -> int:
        epoch = int(store.get("epoch") or 0) % st.EPOCH_MAX + 1
        store.put("epoch", epoch)
        return epoch
    return new_epoch


def paper_venue(store: Store, cfg: GridConfig) -> tuple[Optional[dict[str, Any]], Optional[list[int]]]:
    """The saved simulated venue to restore, or None to build a new one from the config.

    Paper settings that changed since the venue was built (market rules, start price, balances, fees,
    symbol, price model) rebuild it: a simulation owns no real coins, so nothing is lost by starting it
    afresh, while keeping it would silently trade under the old rules. The old simulated grid is
    forgotten cleanly (its orders closed in the store, the strategy and venue snapshots dropped, so
    the next start is a fresh grid); returned too are the old venue's id counters, so the new venue's
    trade and order ids never repeat ids already recorded.
    """
    from ..exchange import _paper_snapshot  # named fields, checked version (SnapshotError if unknown)

    want, saved, have = paper_fingerprint(cfg), store.get("paper"), store.get("paper_cfg")
    if saved is not None and have is None:  # saved before the fingerprint was kept: compare what the venue has
        pc = cfg.paper
        now = [cfg.symbol, cfg.base_asset, cfg.quote_asset, pc.tick_size, pc.step_size, pc.min_qty, cfg.fee_rate,
               pc.taker_fee]
        was = _paper_snapshot.rules(saved)
        names = ("symbol", "base", "quote", "tick_size", "step_size", "min_qty", "fee_rate", "taker_fee")
        changed = [n for n, a, b in zip(names, was, now) if a != b]
    else:
        changed = [] if saved is None else _diff(have, want)
    if not changed:
        if have != want:
            store.put("paper_cfg", want)
        return saved, None
    rows = store.orders(PENDING, OPEN)
    log.warning("paper settings changed (%s): rebuilding the simulated venue; the old simulated grid (%d orders) "
                "and its books are dropped", ", ".join(changed), len(rows))
    ids = _paper_snapshot.id_counters(saved)
    with store.tx():
        for r in rows:
            store.set_status(r.client_id, CANCELLED, note="paper venue rebuilt")
        for key in ("paper", "strategy", "grid", "started_ms", "profit"):
            store.delete(key)
        store.put("paper_cfg", want)
    return None, ids


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Dotted names of the leaves that differ between two JSON-like dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _diff(a.get(k), b.get(k), f"{path}{k}.")]
    return [] if a == b else [path.rstrip(".").removeprefix("paper.") or "paper"]
