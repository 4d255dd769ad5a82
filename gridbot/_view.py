"""One record per instance: systemd's row + the bot's published figures. Pure; shared by
``gridbot list`` (table and ``--json``), ``gridbot top`` and ``gridbot web``.

Record keys are stable (documented in README, "gridbot list --json"): systemd's keys as before,
plus the figures under the names ``figures.compute`` publishes. Money and prices are decimal
strings (exact), counts ints, times Unix seconds; a figure the bot has not published is null.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Optional

# figures copied into the list record (the rest of the figures file: orders, lines, fills, is
# for top and web)
FIGURE_KEYS = ("mode", "exchange", "symbol", "base", "quote", "price", "lower", "upper", "levels", "orders_open",
               "orders_buy", "orders_sell", "levels_missing", "realised_profit", "unrealised_pnl", "total_pnl",
               "fees_in_quote", "fees_base", "fees_quote", "fills", "pairs", "base_held", "base_in_orders",
               "quote_in_orders", "phase", "note", "degraded", "health")
DEGRADED_PHASES = ("stopped",)  # active, but stop-loss/take-profit fired: the grid no longer trades


def display_state(row: Any, fig: Optional[dict]) -> str:
    """systemd's state plus, for a failed instance, why; for a running one, the grid's phase."""
    if row.load_state != "loaded":
        return row.load_state
    if row.active_state == "failed":
        why = f"exit {row.exit_status}" if row.result == "exit-code" else row.result
        return f"failed ({why})" if why else "failed"
    if row.active_state == "active" and row.sub_state == "running":
        phase = fig.get("phase") if fig else None
        if fig and fig.get("degraded") and phase in (None, "running"):
            return "running/degraded"  # up, but not trading as configured (fig["health"] says why)
        return "running" if phase in (None, "running") else f"active/{phase}"
    return row.active_state if row.sub_state in ("running", "dead") else f"{row.active_state}/{row.sub_state}"


def is_bad(row: Any, fig: Optional[dict]) -> bool:
    """Failed, or degraded: running but its grid stopped trading, or the bot says it is degraded."""
    if row.active_state == "failed" or row.load_state in ("error", "bad-setting", "masked"):
        return True
    return row.active_state == "active" and bool(fig) and (fig.get("phase") in DEGRADED_PHASES
                                                            or bool(fig.get("degraded")))


def record(row: Any, fig: Optional[dict]) -> dict[str, Any]:
    """The ``list --json`` object of one instance."""
    rec: dict[str, Any] = {
        "name": row.name, "unit": row.unit, "load_state": row.load_state, "active_state": row.active_state,
        "sub_state": row.sub_state, "main_pid": row.main_pid or None,
        "since": row.since_us / 1e6 if row.since_us else None, "restarts": row.n_restarts,
        "result": row.result or None, "exit_status": row.exit_status,
        "cpu_seconds": None if row.cpu_ns is None else row.cpu_ns / 1e9,
        "memory_bytes": row.memory_bytes, "tasks": row.tasks, "status_text": row.status_text,
        "enabled": row.enabled, "state": display_state(row, fig), "bad": is_bad(row, fig),
    }
    fig = fig or {}
    for k in FIGURE_KEYS:
        rec[k] = fig.get(k)
    rec["figures_time"] = fig.get("time")
    return rec


def _d(x: Any) -> Optional[Decimal]:
    if x is None:
        return None
    try:
        return Decimal(str(x))
    except InvalidOperation:
        return None


def totals(records: Iterable[dict]) -> list[dict[str, Any]]:
    """One total per quote asset, over the instances that published figures, sorted by quote."""
    by: dict[str, dict[str, Any]] = {}
    for r in records:
        q = r.get("quote")
        if not q:
            continue
        t = by.setdefault(q, {"quote": q, "instances": 0, "orders_open": 0, "realised_profit": Decimal(0),
                              "unrealised_pnl": Decimal(0), "total_pnl": Decimal(0), "fees_in_quote": Decimal(0),
                              "fills": 0, "pairs": 0})
        t["instances"] += 1
        for k in ("orders_open", "fills", "pairs"):
            t[k] += r.get(k) or 0
        for k in ("realised_profit", "unrealised_pnl", "total_pnl", "fees_in_quote"):
            v = _d(r.get(k))
            if v is not None:
                t[k] += v
    out = []
    for q in sorted(by):
        t = by[q]
        for k in ("realised_profit", "unrealised_pnl", "total_pnl", "fees_in_quote"):
            t[k] = str(t[k])
        out.append(t)
    return out


def money(x: Any) -> str:
    """+12.40 for the table (two places; four under 1, so a young grid's cents show)."""
    v = _d(x)
    if v is None:
        return "-"
    return f"{v:+.2f}" if abs(v) >= 1 else f"{v:+.4f}"


def sort_records(recs: list[dict], key: str, reverse: bool = False) -> list[dict]:
    """Sort by any record key: numbers (and decimal strings) as numbers, missing values last."""
    def k(r: dict) -> tuple:
        v = r.get(key)
        if v is None:
            return (1, 0, "")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return (0, v, "")
        d = _d(v) if isinstance(v, str) else None
        return (0, d, "") if d is not None else (0, 0, str(v))
    present = [r for r in recs if r.get(key) is not None]
    missing = [r for r in recs if r.get(key) is None]
    return sorted(present, key=k, reverse=reverse) + missing


def ladder(fig: dict, height: int) -> list[str]:
    """The grid as text, highest line first: each price line with its resting order (BUY/SELL and
    quantity), and the last price marked where it sits. At most ``height`` lines, centred on the price."""
    lines = [_d(x) for x in fig.get("lines") or []]
    if not lines:
        return ["no grid published yet"]
    orders = {}
    for side, price, qty in fig.get("orders") or []:
        orders[_d(price)] = (side, qty)
    price = _d(fig.get("price"))
    rows: list[tuple[Decimal, str]] = []
    for p in sorted(set(lines), reverse=True):
        side, qty = orders.get(p, ("", ""))
        label = f"{'SELL' if side == 'sell' else 'BUY ' if side == 'buy' else '    '} {qty}" if side else ""
        rows.append((p, f"{str(p):>12}  {label}"))
    if price is not None:
        at = next((i for i, (p, _) in enumerate(rows) if price >= p), len(rows))
        rows.insert(at, (price, f"{str(price):>12}  <<< price"))
    else:
        at = len(rows) // 2
    if len(rows) > height > 0:
        start = max(0, min(at - height // 2, len(rows) - height))
        rows = rows[start:start + height]
    return [text for _, text in rows]
