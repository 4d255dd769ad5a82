import asyncio
import json
from decimal import Decimal as D

import pytest

from gridbot.errors import OrderRejected, SnapshotError
from gridbot.exchange.base import Market, OrderStatus, Side
from gridbot.exchange.paper import PaperExchange, PaperVenue, PriceStream, read_csv_prices

M = Market("SOL_USDC", "SOL", "USDC", D("0.01"), D("0.01"), D("0.05"))


def venue(quote=D(1000), base=D(2), **kw) -> PaperVenue:
    v = PaperVenue(M, {"USDC": quote, "SOL": base}, D("0.001"), D("0.002"), clock=lambda: 1000, **kw)
    v.set_price(D(100))
    return v


@pytest.mark.parametrize("side,price,qty,msg", [
    (Side.buy, D("99.999"), D(1), "tick size"),
    (Side.buy, D(99), D("1.001"), "step size"),
    (Side.buy, D(99), D("0.04"), "below the minimum"),
    (Side.buy, D(99), D(11), "insufficient USDC"),
    (Side.sell, D(101), D(3), "insufficient SOL"),
    (Side.buy, D(100), D(1), "post-only"),
    (Side.sell, D(99), D(1), "post-only"),
])
def test_place_limit_rejections_say_why(side, price, qty, msg):
    v = venue()
    with pytest.raises(OrderRejected, match=msg):
        v.place_limit(side, price, qty, 7)
    assert v.open_orders() == [] and v.balances()["USDC"].locked == 0


def test_duplicate_client_id_is_rejected_even_after_close():
    v = venue()
    v.place_limit(Side.buy, D(99), D(1), 7)
    v.cancel(7)
    with pytest.raises(OrderRejected, match="duplicate client_id"):
        v.place_limit(Side.buy, D(98), D(1), 7)
    with pytest.raises(OrderRejected, match="unknown or already closed"):
        v.cancel(7)
    with pytest.raises(OrderRejected, match="unknown"):
        v.cancel(12345)


def test_resting_buy_fills_at_its_price_with_maker_fee_in_base():
    v = venue()
    v.place_limit(Side.buy, D(99), D(2), 1)
    assert v.balances()["USDC"].locked == D(198)
    assert v.set_price(D("99.50")) == []
    (f,) = v.set_price(D(98))
    assert (f.price, f.qty, f.fee, f.fee_asset, f.is_maker) == (D(99), D(2), D("0.002"), "SOL", True)
    b = v.balances()
    assert b["USDC"].total == D(1000 - 198) and b["USDC"].locked == 0
    assert b["SOL"].available == D(2) + D(2) - D("0.002")
    assert v.get_order(1).status is OrderStatus.filled


def test_sell_pays_fee_in_quote_and_market_orders_pay_taker():
    v = venue()
    v.place_limit(Side.sell, D(101), D(1), 1)
    (f,) = v.set_price(D(102))
    assert (f.fee, f.fee_asset) == (D("0.101"), "USDC")
    o = v.place_market(Side.sell, D("0.5"), 2)
    assert o.status is OrderStatus.filled
    f2 = v.fills_since(0)[-1]
    assert (f2.price, f2.fee, f2.is_maker) == (D(102), D(102) * D("0.5") * D("0.002"), False)
    with pytest.raises(OrderRejected, match="insufficient SOL"):
        v.place_market(Side.sell, D(5), 3)


def test_partial_fills_with_limited_liquidity_and_cancel_releases_the_rest():
    v = venue(liquidity_per_tick=D("0.3"))
    v.place_limit(Side.buy, D(99), D(1), 1)
    fills = v.set_price(D(98)) + v.set_price(D(98))
    assert [f.qty for f in fills] == [D("0.3"), D("0.3")]
    o = v.get_order(1)
    assert o.status is OrderStatus.open and o.filled_qty == D("0.6")
    v.cancel(1)
    b = v.balances()["USDC"]
    assert b.locked == 0 and b.total == D(1000) - D("0.6") * 99


def test_gap_fills_nearest_first():
    v = venue()
    for i, p in enumerate([D(99), D(98), D(97)]):
        v.place_limit(Side.buy, p, D(1), i + 1)
    fills = v.set_price(D("97.50"))
    assert [f.price for f in fills] == [D(99), D(98)]
    assert [o.client_id for o in v.open_orders()] == [3]


def test_non_post_only_crossing_limit_takes_at_last_price():
    v = venue()
    o = v.place_limit(Side.buy, D(105), D(1), 1, post_only=False)
    assert o.status is OrderStatus.filled
    assert v.balances()["USDC"].total == D(900)  # paid 100, not 105


def test_fills_since_is_inclusive_and_ordered():
    t = [1000]
    v = PaperVenue(M, {"USDC": D(1000)}, D(0), D(0), clock=lambda: t[0])
    v.set_price(D(100))
    v.place_limit(Side.buy, D(99), D(1), 1)
    v.place_limit(Side.buy, D(98), D(1), 2)
    v.set_price(D(99))
    t[0] = 2000
    v.set_price(D(98))
    assert [f.client_id for f in v.fills_since(1000)] == [1, 2]
    assert [f.client_id for f in v.fills_since(1001)] == [2]


def test_round_trip_through_json_keeps_everything():
    v = venue(liquidity_per_tick=D("0.5"))
    v.place_limit(Side.buy, D(99), D(1), 1)
    v.place_limit(Side.sell, D(101), D(1), 2)
    v.set_price(D(99))
    d = json.loads(json.dumps(v.to_dict()))
    w = PaperVenue.from_dict(d, clock=lambda: 1000)
    assert w.to_dict() == v.to_dict()
    assert w.balances() == v.balances() and w.open_orders() == v.open_orders()
    assert [f.qty for f in w.set_price(D(98))] == [D("0.5")]  # the restored book still matches


def v1_snapshot(v: PaperVenue) -> dict:
    """The venue as version 1 wrote it (positional arrays): ``PaperVenue.to_dict`` until snapshots
    named their fields, kept verbatim so the migration is tested against the real old format."""
    m = v.market

    def order(o):
        return [o.client_id, o.side.value, str(o.price), str(o.qty), str(o.filled_qty), o.status.value,
                o.exchange_id]

    return {
        "v": 1,
        "market": [m.symbol, m.base, m.quote, str(m.tick_size), str(m.step_size), str(m.min_qty)],
        "fees": [str(v.maker_fee), str(v.taker_fee)],
        "liquidity": None if v.liquidity_per_tick is None else str(v.liquidity_per_tick),
        "avail": {a: str(x) for a, x in v._avail.items()},
        "locked": {a: str(x) for a, x in v._locked.items()},
        "collected": {a: str(x) for a, x in v.fees_collected.items()},
        "last_price": None if v.last_price is None else str(v.last_price),
        "orders": [order(v._orders[c]) for c in list(v._orders)],
        "closed": list(v._closed),
        "book": [[str(p), s, c] for p, s, c in v._bids + v._asks],
        "seq": [v._seq, v._trade_seq, v._last_ms, v._order_seq],
        "fills": [[f.trade_id, f.client_id, f.side.value, str(f.price), str(f.qty), str(f.fee), f.fee_asset,
                   f.is_maker, f.order_id, f.timestamp_ms] for f in v._fills],
    }


def test_a_v1_snapshot_loads_identically_and_an_unknown_version_is_refused():
    v = venue(liquidity_per_tick=D("0.5"))
    v.place_limit(Side.buy, D(99), D(1), 1)
    v.place_limit(Side.sell, D(101), D(1), 2)
    v.place_limit(Side.sell, D(102), D(1), 3)
    v.cancel(3)
    v.set_price(D(99))
    old = json.loads(json.dumps(v1_snapshot(v)))
    w = PaperVenue.from_dict(old, clock=lambda: 1000)
    assert w.to_dict() == v.to_dict() and w.to_dict()["v"] == 2
    assert w.balances() == v.balances() and w.open_orders() == v.open_orders()
    assert w.fills_since(0) == v.fills_since(0) and w.get_order(3) == v.get_order(3)
    assert [f.qty for f in w.set_price(D(98))] == [f.qty for f in v.set_price(D(98))]
    for bad in (3, None, "2"):
        with pytest.raises(SnapshotError, match=f"paper venue has format version {bad!r}; this gridbot reads"):
            PaperVenue.from_dict({**v.to_dict(), "v": bad})


def test_order_ids_are_the_venues_own_and_a_snapshot_from_before_them_still_loads():
    v = venue()
    a = v.place_limit(Side.buy, D(99), D(1), 70)
    b = v.place_limit(Side.sell, D(101), D(1), 5)
    assert (a.exchange_id, b.exchange_id) == ("P1", "P2")  # never derived from the client id
    (f,) = v.set_price(D(99))
    assert f.order_id == "P1"
    d = json.loads(json.dumps(v1_snapshot(v)))
    d["orders"] = [o[:6] for o in d["orders"]]  # the layout an older version saved
    d["fills"] = [r[:8] + r[9:] for r in d["fills"]]
    d["seq"] = d["seq"][:3]
    w = PaperVenue.from_dict(d, clock=lambda: 1000)
    assert w.get_order(5).exchange_id == "P5" and w.fills_since(0)[0].order_id == "P70"
    assert w.place_limit(Side.buy, D(98), D(1), 6).exchange_id == "P71"  # after every old id
    w.transfer("SOL", -D("1.999"))  # 2 + 1 bought - 0.001 fee - 1 locked by the sell
    assert w.balances()["SOL"].available == D(0) and w.balances()["SOL"].locked == D(1)
    with pytest.raises(OrderRejected, match="insufficient SOL"):
        w.transfer("SOL", -D("0.01"))


def test_price_stream_is_reproducible_and_resumable():
    a = PriceStream(D(150), D("0.01"), seed=3, volatility=0.01, jump_probability=0.1)
    path = [a.next() for _ in range(50)]
    assert all(p % D("0.01") == 0 and p > 0 for p in path)
    assert len(set(path)) > 10
    b = PriceStream(D(150), D("0.01"), seed=3, volatility=0.01, jump_probability=0.1, n=20, price=path[19])
    assert [b.next() for _ in range(30)] == path[20:]
    c = PriceStream(D(150), D("0.01"), seed=4, volatility=0.01, jump_probability=0.1)
    assert [c.next() for _ in range(50)] != path


def test_csv_prices(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text("price\n100.5\n\n101\n99.25,extra\n")
    prices = read_csv_prices(f)
    assert prices == [D("100.5"), D(101), D("99.25")]
    s = PriceStream(D(1), D("0.01"), prices=prices)
    assert [s.next() for _ in range(4)] == [D(101), D("99.25"), D("100.5"), D(101)]


def test_paper_exchange_persists_and_restores():
    saved = {}
    stream = PriceStream(D(100), D("0.01"), seed=1, volatility=0.05)

    async def go():
        ex = PaperExchange.create(M, {"USDC": D(1000)}, D(0), D(0), stream, 0.0, save=saved.update)
        await ex.place_limit("SOL_USDC", Side.buy, D(50), D(1), 9)
        for _ in range(5):
            await ex.wait_event(1.0)
        with pytest.raises(Exception, match="not ETH_USDC"):
            await ex.open_orders("ETH_USDC")
        return ex

    ex = asyncio.run(go())
    ex.persist()
    snap = json.loads(json.dumps(saved))
    again = PaperExchange.create(M, {"USDC": D(5)}, D(0), D(0), PriceStream(D(100), D("0.01"), seed=1,
                                 volatility=0.05), 0.0, saved=snap)
    assert again.venue.get_order(9) is not None and again.venue.balances() == ex.venue.balances()
    assert again.stream.n == 5 and again.stream.next() == ex.stream.next()
