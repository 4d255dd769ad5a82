"""The columns of ``gridbot list`` and ``top``: headers, the order they are dropped in to fit a
terminal, and one row's cells and colours from a record. Shared by both views (and nothing else), so
``top`` never imports the list command."""
from __future__ import annotations

from typing import Optional

from ..systemd import UnitRow
from . import _render as r

LIST_HEADERS = ["NAME", "MODE", "STATE", "SYMBOL", "PRICE", "RANGE", "ORDERS", "PROFIT", "PNL", "UPTIME", "RESTARTS",
                "CPU", "MEMORY", "BOOT"]


# dropped in this order until the table fits the terminal; NAME, STATE, PROFIT and PNL always stay
LIST_DROP = ["BOOT", "CPU", "MEMORY", "RESTARTS", "RANGE", "UPTIME", "MODE", "SYMBOL", "ORDERS", "PRICE"]


LIST_RIGHT = ["PRICE", "ORDERS", "PROFIT", "PNL", "RESTARTS", "CPU", "MEMORY"]


def list_cells(rec: dict, row: Optional[UnitRow]) -> list[str]:
    """One table row of ``gridbot list`` (and ``top``) from a record."""
    dash = lambda v: "-" if v is None else str(v)  # noqa: E731
    active = rec["active_state"] == "active"
    rng = f"{rec['lower']}-{rec['upper']}" if rec.get("lower") is not None else "-"
    orders = f"{rec['orders_open']}/{rec['levels']}" if rec.get("levels") is not None else "-"
    return [rec["name"], dash(rec.get("mode")), rec["state"], dash(rec.get("symbol")), dash(rec.get("price")), rng,
            orders, r.money(rec.get("realised_profit")), r.money(rec.get("total_pnl")),
            r.since_h(row.since_us) if active and row is not None else "-", str(rec["restarts"]),
            r.cpu_h(row.cpu_ns) if row is not None else "-", r.bytes_h(rec["memory_bytes"]),
            "enabled" if rec["enabled"] else "disabled"]


def list_styles(rec: dict) -> dict:
    st: dict = {}
    if rec["bad"]:
        st["STATE"] = st["NAME"] = r.RED
    elif rec["active_state"] not in ("active", "inactive"):
        st["STATE"] = r.YELLOW
    for key, head in (("realised_profit", "PROFIT"), ("total_pnl", "PNL")):
        v = rec.get(key)
        if v is not None and v.strip("0.+-") != "":
            st[head] = r.RED if v.startswith("-") else r.GREEN
    return st


def total_cells(t: dict) -> list[str]:
    return [f"TOTAL {t['quote']} ({t['instances']})", "", "", "", "", "", str(t["orders_open"]),
            r.money(t["realised_profit"]), r.money(t["total_pnl"]), "", "", "", "", ""]
