"""Each bot's figures: computed from the strategy state (pure), published as one small JSON file.

The carrier is ``/run/gridbot/figures/NAME.json`` (``--user``: ``$XDG_RUNTIME_DIR/gridbot/figures``),
created by tmpfiles.d as ``root:gridbot 2775``; each file is written atomically (tmp + rename)
with mode 0644. Why there and why world-readable:

- not the state directory: instances get private 0700 state dirs (per-instance identities), so
  an operator could not read a file there, and opening the SQLite store read-only would need the
  same rights plus WAL write access;
- anyone may run ``gridbot list`` (it reads systemd's unit properties, which every local user may
  read, including the ``STATUS=`` line that already carries the grid's profit), so the figures are
  no more secret than that: no account balances, no keys, only the grid's own figures;
- ``/run`` is a tmpfs: no disk wear from a write every few seconds, and stale figures of a
  previous boot do not survive it. The equity history, which must survive restarts, lives in the
  bot's own store and is copied (bounded) to ``NAME.history.json`` beside the figures.

Writes happen at most every ``PUBLISH_EVERY_S`` and only when a figure changed; the history gets a
point a minute, downsampled as it ages (``downsample``).

JSON keys are stable (``FIGURES_VERSION``); money and prices are decimal strings, counts are ints,
times are Unix seconds (floats). This module imports only the standard library at load time, so
``gridbot list`` stays fast.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from .paths import SYSTEM_FIGURES_DIR as SYSTEM_DIR
from .paths import figures_dir  # noqa: F401  (re-exported; the rule lives in paths)

FIGURES_VERSION = 1
PUBLISH_EVERY_S = 2.0  # at most one write per this many seconds, and only when something changed
HISTORY_EVERY_S = 60.0  # one equity point a minute
RECENT_FILLS = 10
HISTORY_TIERS = ((2 * 3600, 60), (2 * 86400, 900), (30 * 86400, 4 * 3600))  # (age up to, one point per)
HISTORY_MAX_AGE_S = 90 * 86400  # older points are dropped; the last tier keeps one a day

# keys whose change alone does not warrant a rewrite
_VOLATILE = ("time",)


# ---------------------------------------------------------------- pure: state -> figures

def _s(x: Any) -> Optional[str]:
    return None if x is None else str(x)


def _q8(x: Any) -> str:
    """A Decimal to at most 8 places, without exponent noise or trailing zeros."""
    from decimal import Decimal

    return format(x.quantize(Decimal("0.00000001")).normalize(), "f")


def compute(name: str, exchange: str, state: Any, price: Any, now: float,
            recent_fills: Iterable[dict] = (), health: Optional[list[str]] = None) -> dict[str, Any]:
    """Strategy state (``strategy.GridState``) + last price -> the published figures. Pure.

    PnL, all in quote: ``total_pnl`` = quote gained + base gained x price (mark-to-market of every
    fill since the grid started, fees included); ``realised_profit`` = matched buy->sell pairs;
    ``unrealised_pnl`` = the rest (the inventory the grid bought and still holds, at this price).
    """
    from decimal import Decimal

    s, p = state, state.p
    zero = Decimal(0)
    orders = []
    buy_n = sell_n = 0
    quote_in_buys = base_in_sells = zero
    for _cid, (_gap, side, oprice, remaining) in s.live().items():
        if side.value == "buy":
            buy_n += 1
            quote_in_buys += oprice * remaining
        else:
            sell_n += 1
            base_in_sells += remaining
        orders.append([side.value, str(oprice), str(remaining)])
    orders.sort(key=lambda o: Decimal(o[1]))
    if price is not None:
        total = s.quote_delta + s.base_delta * price
        unreal = total - s.realised
        fees = s.fees_quote + s.fees_base * price
    else:
        total = unreal = fees = None
    levels = len(s.gaps)
    return {
        "v": FIGURES_VERSION,
        "name": name,
        "mode": "paper" if exchange == "paper" else "live",
        "exchange": exchange,
        "symbol": f"{p.base}_{p.quote}",
        "base": p.base,
        "quote": p.quote,
        "price": _s(price),
        "lower": str(p.buy[0]),
        "upper": str(p.sell[-1]),
        "levels": levels,
        "orders_open": len(s.by_cid),
        "orders_buy": buy_n,
        "orders_sell": sell_n,
        "levels_missing": max(levels - len(s.by_cid), 0),
        "qty_per_level": str(p.qty),
        "realised_profit": _q8(s.realised),
        "unrealised_pnl": None if unreal is None else _q8(unreal),
        "total_pnl": None if total is None else _q8(total),
        "fees_base": _q8(s.fees_base),
        "fees_quote": _q8(s.fees_quote),
        "fees_in_quote": None if fees is None else _q8(fees),
        "fills": s.fills,
        "pairs": s.pairs,
        "base_held": _q8(s.inventory),
        "base_in_orders": _q8(base_in_sells),
        "quote_in_orders": _q8(quote_in_buys),
        "phase": s.phase.value,
        "note": s.note,
        "stop_loss": _s(p.stop_loss),
        "take_profit": _s(p.take_profit),
        "lines": [str(x) for x in p.buy],
        "orders": orders,
        "recent_fills": list(recent_fills),
        # healthy means trading (gridbot/health.py): why the bot is not, empty when it is; null when unknown
        "degraded": None if health is None else bool(health),
        "health": None if health is None else list(health),
        "time": round(now, 3),
    }


def _money(x: Any, places: int = 2) -> str:
    """+12.40 / -3.10; four places under 1 so a young grid's cents do not read as zero."""
    return f"{x:+.{places}f}" if abs(x) >= 1 else f"{x:+.4f}"


def status_line(state: Any, price: Any) -> str:
    """The ``STATUS=`` text, every figure labelled:
    ``SOL 150.32 | 30/30 orders | grid +12.40 USDC (31 pairs) | pnl -3.10 USDC | running``."""
    s = state
    if s is None:
        return "starting"
    q = s.p.quote
    head = f"{s.p.base} {price if price is not None else '?'}"
    parts = [head, f"{len(s.by_cid)}/{len(s.gaps)} orders", f"grid {_money(s.realised)} {q} ({s.pairs} pairs)"]
    if price is not None:
        parts.append(f"pnl {_money(s.quote_delta + s.base_delta * price)} {q}")
    parts.append(s.phase.value)
    return " | ".join(parts)


def history_point(fig: dict[str, Any]) -> Optional[list]:
    """[time, price, total_pnl, realised_profit] or None before the first price."""
    if fig.get("price") is None:
        return None
    return [round(fig["time"]), fig["price"], fig["total_pnl"], fig["realised_profit"]]


def downsample(points: list[list], now: float) -> list[list]:
    """Keep the newest point of each bucket; buckets widen with age (``HISTORY_TIERS``).

    Points older than ``HISTORY_MAX_AGE_S`` go. Sorted by time in and out. Pure.
    """
    out: list[list] = []
    last_key: Optional[tuple] = None
    for pt in reversed(points):  # newest first: the newest of each bucket wins
        age = now - pt[0]
        if age > HISTORY_MAX_AGE_S:
            break
        width = next((w for upto, w in HISTORY_TIERS if age <= upto), 86400)
        key = (width, int(pt[0] // width))
        if key == last_key:
            continue
        last_key = key
        out.append(pt)
    out.reverse()
    return out


# ---------------------------------------------------------------- I/O: write and read

def write_atomic(path: Path, data: dict[str, Any]) -> None:
    """paths.write_atomic of the JSON; 0644 whatever the unit's UMask, so operators can read it."""
    from .paths import write_atomic as write

    write(path, json.dumps(data, separators=(",", ":")).encode(), 0o644)


class Publisher:
    """Owned by the runner: ``tick()`` from the heartbeat; cheap when nothing is due."""

    def __init__(self, name: str, exchange: str, directory: Path,
                 load_history: Callable[[], Any] = lambda: None,
                 save_history: Callable[[list], None] = lambda h: None,
                 recent_fills: Callable[[int], list[dict]] = lambda n: [],
                 clock: Callable[[], float] = time.time, log: Optional[Callable[[str], None]] = None) -> None:
        self.name, self.exchange, self.dir = name, exchange, Path(directory)
        self._save_history, self._recent_fills, self._clock, self._log = save_history, recent_fills, clock, log
        try:
            h = load_history()
            self.history: list[list] = [list(x) for x in h] if isinstance(h, list) else []
        except Exception:  # noqa: BLE001 - a bad history never stops a bot
            self.history = []
        self._last_check = -1e18
        self._last_point = self.history[-1][0] if self.history else -1e18
        self._last: Optional[dict] = None
        self._fills_seen = -1
        self._fills_cache: list[dict] = []
        self.disabled = False
        self.writes = 0
        if self.dir != SYSTEM_DIR:  # the user manager's case; the system's is made by tmpfiles.d
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
            except OSError:
                pass

    def tick(self, state: Any, price: Any, force: bool = False, health: Optional[list[str]] = None) -> bool:
        """Publish if due and changed; True if a file was written."""
        now = self._clock()
        if state is None or self.disabled or (not force and now - self._last_check < PUBLISH_EVERY_S):
            return False
        self._last_check = now
        if state.fills != self._fills_seen:
            try:
                self._fills_cache = self._recent_fills(RECENT_FILLS)
            except Exception:  # noqa: BLE001
                self._fills_cache = []
            self._fills_seen = state.fills
        fig = compute(self.name, self.exchange, state, price, now, self._fills_cache, health)
        wrote = False
        if self._last is None or any(fig[k] != self._last[k] for k in fig if k not in _VOLATILE):
            wrote = self._write(self.dir / f"{self.name}.json", fig)
            self._last = fig
        if not self.disabled and now - self._last_point >= HISTORY_EVERY_S:
            pt = history_point(fig)
            if pt is not None:
                self._last_point = now
                self.history = downsample(self.history + [pt], now)
                try:
                    self._save_history(self.history)
                except Exception as exc:  # noqa: BLE001
                    self._warn(f"equity history not saved: {exc}")
                self._write(self.dir / f"{self.name}.history.json",
                            {"v": FIGURES_VERSION, "name": self.name, "quote": state.p.quote, "time": round(now, 3),
                             "points": self.history})
        return wrote

    def _write(self, path: Path, data: dict) -> bool:
        try:
            write_atomic(path, data)
            self.writes += 1
            return True
        except OSError as exc:
            # no directory (not installed with tmpfiles.d) or not writable: say so once, keep trading
            self._warn(f"figures not published to {self.dir}: {exc.strerror or exc}; `gridbot list` shows "
                       "no figures for this instance")
            self.disabled = True
            return False

    def _warn(self, text: str) -> None:
        if self._log is not None:
            self._log(text)


def read(directory: Path, name: str, history: bool = False) -> Optional[dict[str, Any]]:
    """One instance's figures (or history), None if absent or unreadable."""
    path = Path(directory) / (f"{name}.history.json" if history else f"{name}.json")
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_all(directory: Path, names: Optional[Iterable[str]] = None) -> dict[str, dict[str, Any]]:
    """name -> figures for every figures file (or only ``names``)."""
    d = Path(directory)
    if names is None:
        try:
            names = [f[:-5] for f in os.listdir(d) if f.endswith(".json") and not f.endswith(".history.json")
                     and not f.startswith(".")]
        except OSError:
            return {}
    out = {}
    for n in names:
        fig = read(d, n)
        if fig is not None:
            out[n] = fig
    return out
