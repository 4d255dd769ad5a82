"""The strategy snapshot: version 2 names its fields; a version 1 snapshot (positional gaps and
market legs, as every gridbot before it wrote) loads into the same state; any other version is refused."""
import json
from decimal import Decimal as D

import pytest

from gridbot import strategy as st
from gridbot.errors import SnapshotError
from gridbot.grid import price_lines, tick_levels
from gridbot.records import Side


def v1_snapshot(s: st.GridState) -> dict:
    """``GridState.to_dict`` as version 1 wrote it, kept verbatim (phase was a plain string)."""
    p = s.p

    def _s(x):
        return None if x is None else str(x)

    return {
        "v": 1,
        "params": {"buy": [str(x) for x in p.buy], "sell": [str(x) for x in p.sell], "qty": str(p.qty),
                   "step": str(p.step), "min_qty": str(p.min_qty), "base": p.base, "quote": p.quote,
                   "market_fee": str(p.market_fee), "stop_loss": _s(p.stop_loss),
                   "take_profit": _s(p.take_profit), "sell_on_trigger": p.sell_on_trigger},
        "phase": str(s.phase.value), "price": _s(s.price), "next_cid": s.next_cid,
        "gaps": [[g.side.value if g.side else None, str(g.qty), str(g.filled), str(g.cost), str(g.fee_base),
                  str(g.fee_quote), g.cid, g.rejects, _s(g.basis)] for g in s.gaps],
        "want": sorted(s.want),
        "markets": {str(k): [m.reason, str(m.qty), str(m.filled)] for k, m in s.markets.items()},
        "seen": list(s.seen_order),
        "retired": {str(k): v.value for k, v in s.retired.items()},
        "base_start": str(s.base_start), "base_delta": str(s.base_delta),
        "quote_delta": str(s.quote_delta), "fees_base": str(s.fees_base),
        "fees_quote": str(s.fees_quote), "realised": str(s.realised), "pairs": s.pairs,
        "fills": s.fills, "note": s.note, "dust": str(s.dust), "close_pending": s.close_pending,
        "epoch": s.epoch, "close_retry": s.close_retry, "close_rejects": s.close_rejects,
        "held": sorted(s.held),
    }


def busy_state() -> st.GridState:
    """A state with a bit of everything: fills and a matched pair, a partial fill, a held level, a
    market leg in flight (half filled), dust, retired orders and seen trades."""
    lv = tick_levels(price_lines(D(90), D(110), 4, False), D("0.01"))
    s = st.init(st.Params(lv.buy, lv.sell, D(1), D("0.01"), D("0.01"), "SOL", "USDC", stop_loss=D(50)), D(0), 3)
    s, (m,) = st.step(s, st.Tick(D(101)))
    s, out = st.step(s, st.Filled(m.client_id, m.qty, D(101), D("0.00201"), "SOL", "t1"))
    orders = {(p.side, p.price): p for p in out if isinstance(p, st.Place)}
    buy, sell = orders[(Side.buy, D(95))], orders[(Side.sell, D(105))]
    s, _ = st.step(s, st.Tick(D(95)))
    s, out = st.step(s, st.Filled(buy.client_id, D(1), D(95), D("0.001"), "SOL", "t2"))
    (counter,) = [p for p in out if isinstance(p, st.Place)]
    s, _ = st.step(s, st.Tick(D(100.5)))
    s, _ = st.step(s, st.Filled(counter.client_id, counter.qty, D(100), D("0.1"), "USDC", "t3"))  # a pair
    s, _ = st.step(s, st.Tick(D(105)))
    s, _ = st.step(s, st.Filled(sell.client_id, D("0.4"), D(105), D("0.04"), "USDC", "t4"))  # partial
    s, _ = st.step(s, st.Rejected(orders[(Side.buy, D(90))].client_id, "insufficient funds"))  # held
    s.markets[st.client_id(3, 99)] = st.MarketLeg("rebalance", D("1.5"), D("0.5"))
    assert s.pairs == 1 and s.held and s.markets and s.retired and s.fills == 4
    return s


def test_v2_names_every_field_and_round_trips():
    s = busy_state()
    d = json.loads(json.dumps(s.to_dict()))
    assert d["v"] == st.SNAPSHOT_VERSION == 2 and d["phase"] == "running"
    assert set(d["gaps"][0]) == {"side", "qty", "filled", "cost", "fee_base", "fee_quote", "cid", "rejects", "basis"}
    assert set(next(iter(d["markets"].values()))) == {"reason", "qty", "filled"}
    assert st.GridState.from_dict(d).to_dict() == s.to_dict()


def test_a_v1_snapshot_from_before_loads_identically():
    s = busy_state()
    old = json.loads(json.dumps(v1_snapshot(s)))
    r = st.GridState.from_dict(old)
    assert r.to_dict() == s.to_dict()
    assert r.phase is st.RUNNING and isinstance(r.markets[st.client_id(3, 99)], st.MarketLeg)
    assert (r.best_buy, r.best_sell, r.lo, r.hi) == (s.best_buy, s.best_sell, s.lo, s.hi)
    assert list(r.seen_order) == list(s.seen_order) and r.seen == s.seen
    # and it goes on exactly as the original would: same intents, same books
    for ev in (st.Tick(D(96)), st.Release(tuple(sorted(s.held))), st.Filled(st.client_id(3, 99), D(1), D(96),
                                                                              D(0), "SOL", "t5")):
        (s, a), (r, b) = st.step(s, ev), st.step(r, ev)
        assert a == b and r.to_dict() == s.to_dict()


@pytest.mark.parametrize("version", [3, 0, None, "2"])
def test_an_unknown_version_is_refused_with_one_clear_line(version):
    d = busy_state().to_dict()
    d["v"] = version
    with pytest.raises(SnapshotError) as exc:
        st.GridState.from_dict(d)
    assert str(exc.value) == (f"the saved strategy state has format version {version!r}; "
                              "this gridbot reads versions 1 to 2")


def test_notices_are_typed_and_match_the_note():
    s = busy_state()
    assert s.notice is not None and s.notice.text == s.note
    assert s.notice.level is st.Level.warning and s.notice.kind is st.Kind.rejected
    fresh = st.init(busy_state().p, D(5))
    fresh, _ = st.step(fresh, st.Tick(D(100)))
    assert (fresh.notice.level, fresh.notice.kind) == (st.Level.info, st.Kind.grid)
