"""The paper venue's snapshot: named fields and a checked version.

Version 2 (written now) names every field. Version 1 (positional arrays, written up to this
release) is still read: ``upgrade`` turns it into version 2 field by field, so a bot restarted on
this code finds its simulated balances, orders and fills exactly as they were. Any other version is
refused with ``SnapshotError`` (a newer gridbot wrote it; guessing could corrupt the simulation).

The snapshot stored under the ``paper`` key is ``{"v": 2, "venue": {...}, "stream": {"n", "price"}}``.
"""
from __future__ import annotations

from bisect import insort
from decimal import Decimal
from typing import Any, Callable

from ..errors import SnapshotError
from ..records import Fill, Market, Order, OrderStatus, Side

VERSION = 2
_MARKET = ("symbol", "base", "quote", "tick_size", "step_size", "min_qty")


def _refuse(what: str, v: Any) -> SnapshotError:
    return SnapshotError(f"the saved {what} has format version {v!r}; this gridbot reads versions 1 to {VERSION}")


def upgrade(d: dict[str, Any]) -> dict[str, Any]:
    """A venue snapshot of any known version as version 2; SnapshotError for an unknown one."""
    v = d.get("v")
    if v == VERSION:
        return d
    if v != 1:
        raise _refuse("paper venue", v)

    def order(row: list) -> dict[str, Any]:
        cid, side, price, qty, filled, status, *oid = row  # no oid: saved by an older version
        return {"client_id": cid, "side": side, "price": price, "qty": qty, "filled_qty": filled, "status": status,
                "exchange_id": oid[0] if oid else f"P{cid}"}

    def fill(row: list) -> dict[str, Any]:
        t, c, s, p, q, fee, fa, mk, *rest = row  # the timestamp is last; the order id (if any) before it
        return {"trade_id": t, "client_id": c, "side": s, "price": p, "qty": q, "fee": fee, "fee_asset": fa,
                "is_maker": mk, "order_id": rest[0] if len(rest) == 2 else f"P{c}", "timestamp_ms": rest[-1]}

    seq = d["seq"]
    orders = [order(r) for r in d["orders"]]
    return {
        "v": VERSION,
        "market": dict(zip(_MARKET, d["market"])),
        "fees": {"maker": d["fees"][0], "taker": d["fees"][1]},
        "liquidity_per_tick": d["liquidity"],
        "available": d["avail"], "locked": d["locked"], "fees_collected": d["collected"],
        "last_price": d["last_price"],
        "orders": orders,
        "closed": list(d["closed"]),
        "book": [{"price": p, "seq": s, "client_id": c} for p, s, c in d["book"]],
        "counters": {"seq": seq[0], "trade_seq": seq[1], "last_ms": seq[2],
                     # old ids were P<client id>
                     "order_seq": seq[3] if len(seq) > 3 else max((o["client_id"] for o in orders), default=0)},
        "fills": [fill(r) for r in d["fills"]],
    }


def dump(v: Any) -> dict[str, Any]:
    """A ``PaperVenue`` as a version 2 snapshot (this module never imports ``paper``: no cycle)."""
    m = v.market
    return {
        "v": VERSION,
        "market": {"symbol": m.symbol, "base": m.base, "quote": m.quote, "tick_size": str(m.tick_size),
                   "step_size": str(m.step_size), "min_qty": str(m.min_qty)},
        "fees": {"maker": str(v.maker_fee), "taker": str(v.taker_fee)},
        "liquidity_per_tick": None if v.liquidity_per_tick is None else str(v.liquidity_per_tick),
        "available": {a: str(x) for a, x in v._avail.items()},
        "locked": {a: str(x) for a, x in v._locked.items()},
        "fees_collected": {a: str(x) for a, x in v.fees_collected.items()},
        "last_price": None if v.last_price is None else str(v.last_price),
        "orders": [{"client_id": o.client_id, "side": o.side.value, "price": str(o.price), "qty": str(o.qty),
                    "filled_qty": str(o.filled_qty), "status": o.status.value, "exchange_id": o.exchange_id}
                   for o in (v._orders[c] for c in list(v._orders))],
        "closed": list(v._closed),
        "book": [{"price": str(p), "seq": s, "client_id": c} for p, s, c in v._bids + v._asks],
        "counters": {"seq": v._seq, "trade_seq": v._trade_seq, "last_ms": v._last_ms, "order_seq": v._order_seq},
        "fills": [{"trade_id": f.trade_id, "client_id": f.client_id, "side": f.side.value, "price": str(f.price),
                   "qty": str(f.qty), "fee": str(f.fee), "fee_asset": f.fee_asset, "is_maker": f.is_maker,
                   "order_id": f.order_id, "timestamp_ms": f.timestamp_ms} for f in v._fills],
    }


def load(cls: Any, d: dict[str, Any], clock: Callable[[], int]) -> Any:
    """``cls`` (``PaperVenue``) restored from a snapshot of any known version."""
    d = upgrade(d)
    mk = d["market"]
    sym = mk["symbol"]
    market = Market(sym, mk["base"], mk["quote"], Decimal(mk["tick_size"]), Decimal(mk["step_size"]),
                    Decimal(mk["min_qty"]))
    liq = d["liquidity_per_tick"]
    v = cls(market, {}, Decimal(d["fees"]["maker"]), Decimal(d["fees"]["taker"]),
            liquidity_per_tick=None if liq is None else Decimal(liq), clock=clock)
    v._avail = {a: Decimal(x) for a, x in d["available"].items()}
    v._locked = {a: Decimal(x) for a, x in d["locked"].items()}
    v.fees_collected = {a: Decimal(x) for a, x in d["fees_collected"].items()}
    v.last_price = None if d["last_price"] is None else Decimal(d["last_price"])
    for o in d["orders"]:
        cid = o["client_id"]
        v._orders[cid] = Order(cid, sym, Side(o["side"]), Decimal(o["price"]), Decimal(o["qty"]),
                               Decimal(o["filled_qty"]), OrderStatus(o["status"]), o["exchange_id"])
    v._closed = list(d["closed"])
    for b in d["book"]:
        c = b["client_id"]
        insort(v._bids if v._orders[c].side is Side.buy else v._asks, (Decimal(b["price"]), b["seq"], c))
    n = d["counters"]
    v._seq, v._trade_seq, v._last_ms, v._order_seq = n["seq"], n["trade_seq"], n["last_ms"], n["order_seq"]
    v._fills = [Fill(f["trade_id"], f["client_id"], sym, Side(f["side"]), Decimal(f["price"]), Decimal(f["qty"]),
                     Decimal(f["fee"]), f["fee_asset"], f["is_maker"], f["timestamp_ms"], f["order_id"])
                for f in d["fills"]]
    return v


def stream_position(saved: dict[str, Any]) -> tuple[int, Decimal]:
    """``(n, price)`` of the saved price stream (v1: a pair; v2: named)."""
    s = saved["stream"]
    if isinstance(s, dict):
        return s["n"], Decimal(s["price"])
    return s[0], Decimal(s[1])


def rules(saved: dict[str, Any]) -> list[Any]:
    """The saved venue's market rules and fees, in the runner's order: symbol, base, quote (strings),
    tick, step, min quantity, maker fee, taker fee (Decimals)."""
    d = upgrade(saved["venue"])
    mk = d["market"]
    return [mk["symbol"], mk["base"], mk["quote"]] + [Decimal(mk[k]) for k in _MARKET[3:]] + \
        [Decimal(d["fees"]["maker"]), Decimal(d["fees"]["taker"])]


def id_counters(saved: dict[str, Any]) -> list[int]:
    """The saved venue's (trade, order) id counters, so a rebuilt venue never repeats an id."""
    v = saved["venue"]
    if v.get("v") == 1:  # as before: a v1 snapshot without an order counter continues from 0
        seq = v["seq"]
        return [seq[1], seq[3] if len(seq) > 3 else 0]
    n = upgrade(v)["counters"]
    return [n["trade_seq"], n["order_seq"]]
