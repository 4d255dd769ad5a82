"""The real Backpack adapter against the fake Backpack server (tests/gridbot_testsupport/fake_backpack.py) on 127.0.0.1."""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridbot.errors import AuthError, CredentialsError, ExchangeError, OrderRejected
from gridbot.exchange import _sign, backpack
from gridbot.exchange.backpack import BackpackExchange, parse_order
from gridbot.exchange.base import Market, OrderStatus, Side
from gridbot.models import GridConfig

from gridbot_testsupport import fake_backpack, wait_until
from gridbot_testsupport._fake_account import MarketSpec
from gridbot_testsupport.fake_backpack import DEFAULT_MARKETS, FakeBackpack, expected_string

SECRET = base64.b64encode(bytes(range(32))).decode()
PUB = _sign.public_key_b64(_sign.load_private_key(SECRET))
OTHER_SECRET = base64.b64encode(bytes(range(100, 132))).decode()
OTHER_PUB = _sign.public_key_b64(_sign.load_private_key(OTHER_SECRET))
SYM = "SOL_USDC"
D = Decimal


class FakeTime:
    """Monotonic clock + sleep that advance instantly and record every wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def cfg(base_url: str, **bp: Any) -> GridConfig:
    return GridConfig(exchange="backpack", symbol=SYM, lower_price=D(100), upper_price=D(200), levels=10,
                      qty_per_level=D("0.1"), backpack={"base_url": base_url, **bp})


def venue(base_url: str, **bp: Any) -> tuple[Any, str]:
    """The adapter's own config section and symbol, as ``exchange.factory`` hands them over."""
    c = cfg(base_url, **bp)
    return c.backpack, c.symbol


@pytest.fixture
def fake():
    btc = MarketSpec("BTC_USDC", "BTC", "USDC", D("0.1"), D("0.0001"), D("0.0001"), None, None)
    with FakeBackpack(PUB, markets=(*DEFAULT_MARKETS, btc), prices={"SOL_USDC": D(150), "BTC_USDC": D(60000)},
                      balances={"SOL": D(10), "USDC": D(10000), "USDT": D(10000)}) as f:
        yield f


def run(fake: FakeBackpack, body, *, key: str = PUB, secret: str = SECRET, t: FakeTime | None = None,
        bp: dict | None = None, **kw: Any):
    t = t or FakeTime()
    kw.setdefault("timeout_s", 0.3)
    kw.setdefault("min_interval_s", 0)

    async def main():
        ex = BackpackExchange(*venue(fake.base_url, **(bp or {})), key, secret, sleep=t.sleep,
                              monotonic=t.monotonic, **kw)
        try:
            return await body(ex)
        finally:
            await ex.close()
    return asyncio.run(main())


def posts(fake: FakeBackpack, path: str = "/api/v1/order", method: str = "POST") -> list[dict]:
    return [e for e in fake.log if e["method"] == method and e["path"] == path]


# --- happy paths ---------------------------------------------------------------------------------

def test_market_rules_and_ticker(fake):
    async def body(ex):
        return await ex.market(SYM), await ex.market("BTC_USDC"), await ex.last_price(SYM)
    sol, btc, price = run(fake, body)
    assert sol == Market(SYM, "SOL", "USDC", D("0.01"), D("0.01"), D("0.01"), (D("0.75"), D("1.25")), "Open")
    assert btc.tick_size == D("0.1") and btc.min_qty == D("0.0001") and btc.price_band is None
    assert price == D(150)
    assert len([e for e in fake.log if e["path"] == "/api/v1/markets"]) == 1  # cached


def test_unknown_market_is_a_clear_error(fake):
    async def body(ex):
        await ex.market("DOGE_USDC")
    with pytest.raises(ExchangeError, match="DOGE_USDC is not listed"):
        run(fake, body)


def test_place_open_cancel_balances(fake):
    async def body(ex):
        o = await ex.place_limit(SYM, Side.buy, D("149.50"), D("2"), 17)
        opened = await ex.open_orders(SYM)
        bal = await ex.balances()
        await ex.cancel(SYM, 17)
        return o, opened, bal, await ex.open_orders(SYM), await ex.get_order(SYM, 17), await ex.balances()
    o, opened, bal, after, got, bal2 = run(fake, body)
    assert (o.client_id, o.side, o.price, o.qty, o.status) == (17, Side.buy, D("149.5"), D(2), OrderStatus.open)
    assert o.exchange_id
    assert [x.client_id for x in opened] == [17]
    assert bal["USDC"].locked == D("299") and bal["USDC"].available == D("9701")
    assert after == []
    assert got is not None and got.status is OrderStatus.cancelled
    assert bal2["USDC"].available == D(10000) and bal2["USDC"].locked == 0
    sent = posts(fake)[0]["params"]
    assert sent == {"symbol": SYM, "side": "Bid", "orderType": "Limit", "price": "149.5", "quantity": "2",
                    "timeInForce": "GTC", "postOnly": True, "clientId": 17}


def test_post_only_follows_config(fake):
    async def body(ex):
        await ex.place_limit(SYM, Side.sell, D("151"), D("1"), 3, post_only=True)
    run(fake, body, bp={"post_only": False})
    assert posts(fake)[0]["params"]["postOnly"] is False


def test_fill_flows_into_fills_since_and_get_order(fake):
    async def body(ex):
        start = int(time.time() * 1000) - 1
        await ex.place_limit(SYM, Side.sell, D("151"), D("1.5"), 42)
        await ex.place_limit(SYM, Side.buy, D("140"), D("1"), 43)
        fake.set_price(D("151.2"))
        return await ex.fills_since(SYM, start), await ex.get_order(SYM, 42), await ex.open_orders(SYM), \
            await ex.fills_since(SYM, int(time.time() * 1000) + 60_000)
    fills, order, opened, later = run(fake, body)
    assert len(fills) == 1
    f = fills[0]
    assert (f.client_id, f.side, f.price, f.qty, f.symbol) == (42, Side.sell, D(151), D("1.5"), SYM)
    assert f.fee > 0 and f.fee_asset and f.trade_id and f.timestamp_ms > 0
    assert order is not None and order.status is OrderStatus.filled and order.filled_qty == D("1.5")
    assert [o.client_id for o in opened] == [43]
    assert later == []


def test_fills_are_paged(fake, monkeypatch):
    monkeypatch.setattr(backpack, "FILLS_PAGE", 2)

    async def body(ex):
        for i in range(5):
            await ex.place_limit(SYM, Side.sell, D("151") + i, D("0.1"), 100 + i)
        fake.set_price(D("160"))
        return await ex.fills_since(SYM, 0)
    fills = run(fake, body)
    assert sorted(f.client_id for f in fills) == [100, 101, 102, 103, 104]
    assert len({f.trade_id for f in fills}) == 5
    assert len([e for e in fake.log if e["path"] == "/wapi/v1/history/fills"]) == 3


def test_market_order(fake):
    async def body(ex):
        return await ex.place_market(SYM, Side.sell, D("1"), 7), await ex.balances()
    o, bal = run(fake, body)
    assert o.status is OrderStatus.filled and o.filled_qty == D(1) and o.price == D(150)
    assert posts(fake)[0]["params"]["orderType"] == "Market"
    assert bal["SOL"].total == D(9)


def test_unknown_order_lookups(fake):
    async def body(ex):
        got = await ex.get_order(SYM, 999)
        with pytest.raises(OrderRejected, match="no order with this clientId"):
            await ex.cancel(SYM, 999)
        return got
    assert run(fake, body) is None


def test_wait_event_polls(fake):
    t = FakeTime()

    async def body(ex):
        await ex.wait_event(60)
        await ex.wait_event(0.5)
    run(fake, body, t=t, bp={"poll_interval_s": 3})
    assert t.sleeps == [3, 0.5]


def test_throttle_spaces_requests(fake):
    t = FakeTime()

    async def body(ex):
        for _ in range(3):
            await ex.last_price(SYM)
    run(fake, body, t=t, min_interval_s=0.25)
    assert t.sleeps == [pytest.approx(0.25), pytest.approx(0.25)]


# --- local validation ----------------------------------------------------------------------------

@pytest.mark.parametrize("price,qty,match", [
    (D("150.005"), D("1"), "multiple of 0.01"),
    (D("150"), D("0.005"), "at least 0.01"),
    (D("150"), D("1.005"), "multiple of 0.01"),
])
def test_off_grid_orders_refused_before_sending(fake, price, qty, match):
    async def body(ex):
        await ex.place_limit(SYM, Side.buy, price, qty, 1)
    with pytest.raises(OrderRejected, match=match):
        run(fake, body)
    assert posts(fake) == []


def test_client_id_must_be_u32(fake):
    async def body(ex):
        await ex.place_limit(SYM, Side.buy, D(140), D(1), 2**32)
    with pytest.raises(OrderRejected, match="u32"):
        run(fake, body)


# --- venue refusals and error bodies -------------------------------------------------------------

def test_insufficient_funds_is_order_rejected(fake):
    async def body(ex):
        await ex.place_limit(SYM, Side.buy, D(140), D(1000), 6)
    with pytest.raises(OrderRejected, match="INSUFFICIENT_FUNDS"):
        run(fake, body)


def test_error_body_on_order_maps_to_order_rejected_with_message(fake):
    fake.add_fault("error", path="/api/v1/order", method="POST",
                   body={"code": "INVALID_PRICE", "message": "Price too far from last active price"})

    async def body(ex):
        await ex.place_limit(SYM, Side.buy, D(140), D(1), 8)
    with pytest.raises(OrderRejected) as info:
        run(fake, body)
    assert "INVALID_PRICE: Price too far from last active price" in str(info.value)
    assert "clientId 8" in str(info.value)


def test_error_body_on_read_is_exchange_error_not_order_rejected(fake):
    fake.add_fault("error", path="/api/v1/capital", method="GET",
                   body={"code": "MAINTENANCE", "message": "Exchange under maintenance"})

    async def body(ex):
        await ex.balances()
    with pytest.raises(ExchangeError) as info:
        run(fake, body)
    assert not isinstance(info.value, OrderRejected)
    assert str(info.value) == "balances: Backpack answered 400 MAINTENANCE: Exchange under maintenance"


def test_non_json_5xx_exhausting_retries(fake):
    fake.add_fault("5xx", count=10, path="/api/v1/ticker", method="GET")
    t = FakeTime()

    async def body(ex):
        await ex.last_price(SYM)
    with pytest.raises(ExchangeError, match=r"ticker SOL_USDC: Backpack answered 503 HTTP_ERROR: <html>503"):
        run(fake, body, t=t, max_retries=3)
    assert len([e for e in fake.log if e["path"] == "/api/v1/ticker"]) == 0  # faults fire before handling
    assert len(t.sleeps) == 3


def test_connection_refused_is_exchange_error():
    with FakeBackpack(PUB) as f:
        url = f.base_url
    t = FakeTime()

    async def body():
        ex = BackpackExchange(*venue(url), PUB, SECRET, sleep=t.sleep, monotonic=t.monotonic, max_retries=2)
        try:
            await ex.balances()
        finally:
            await ex.close()
    with pytest.raises(ExchangeError, match="balances: cannot talk to Backpack .*ConnectError"):
        asyncio.run(body())
    assert len(t.sleeps) == 2


# --- authentication ------------------------------------------------------------------------------

def test_key_not_matching_secret_refused_at_construction():
    with pytest.raises(CredentialsError, match="does not belong"):
        BackpackExchange(*venue("http://127.0.0.1:9"), OTHER_PUB, SECRET)


def test_unknown_api_key_is_refused(fake):
    async def body(ex):
        await ex.balances()
    with pytest.raises(AuthError, match="UNAUTHORIZED: API key not found .*check the API key"):
        run(fake, body, key=OTHER_PUB, secret=OTHER_SECRET)


def test_bad_signature_rejected_by_fake_and_mapped(fake):
    async def body(ex):
        ex._private = _sign.load_private_key(OTHER_SECRET)  # sign with the wrong key, send the right one
        await ex.place_limit(SYM, Side.buy, D(140), D(1), 9)
    with pytest.raises(ExchangeError, match="INVALID_SIGNATURE"):
        run(fake, body)
    assert fake.placed(9) == 0 and fake.open_orders() == []


def _raw_signed(fake: FakeBackpack, signed_params: dict, sent_params: dict, ts: int | None = None,
                window: int = 5000) -> httpx.Response:
    ts = ts if ts is not None else int(time.time() * 1000)
    key = _sign.load_private_key(SECRET)
    sig = _sign.sign(key, expected_string("orderExecute", signed_params, str(ts), str(window)))
    return httpx.post(fake.base_url + "/api/v1/order", content=json.dumps(sent_params),
                      headers={"X-API-Key": PUB, "X-Signature": sig, "X-Timestamp": str(ts),
                               "X-Window": str(window), "Content-Type": "application/json"})


def test_fake_verifies_signature_over_the_body():
    with FakeBackpack(PUB) as fake:
        good = {"symbol": SYM, "side": "Bid", "orderType": "Limit", "price": "140", "quantity": "1",
                "postOnly": True, "clientId": 1}
        assert _raw_signed(fake, good, good).status_code == 200
        tampered = dict(good, price="141", clientId=2)
        r = _raw_signed(fake, dict(good, clientId=2), tampered)
        assert r.status_code == 401 and r.json()["code"] == "INVALID_SIGNATURE"
        assert fake.placed(1) == 1 and fake.placed(2) == 0


def test_fake_enforces_time_window():
    with FakeBackpack(PUB) as fake:
        p = {"symbol": SYM, "side": "Bid", "orderType": "Limit", "price": "140", "quantity": "1", "clientId": 3}
        old = _raw_signed(fake, p, p, ts=int(time.time() * 1000) - 6000)
        assert old.status_code == 400 and old.json()["message"] == "Request has expired"
        assert _raw_signed(fake, p, p, ts=int(time.time() * 1000) - 6000, window=10000).status_code == 200
        assert _raw_signed(fake, p, p, window=60001).status_code == 400
        future = _raw_signed(fake, dict(p, clientId=4), dict(p, clientId=4), ts=int(time.time() * 1000) + 20000)
        assert future.status_code == 400 and fake.placed(4) == 0


def test_skewed_host_clock_is_refused_not_retried(fake):
    async def body(ex):
        await ex.balances()
    with pytest.raises(ExchangeError, match="Request has expired"):
        run(fake, body, clock=lambda: time.time() - 30, sync_clock=False)
    assert len([e for e in fake.log if e["path"] == "/api/v1/capital"]) == 1


def test_skewed_host_clock_is_corrected_from_server_time(fake, caplog):
    caplog.set_level(logging.WARNING)

    async def body(ex):
        return await ex.balances(), await ex.open_orders(SYM)
    bal, _ = run(fake, body, clock=lambda: time.time() - 30)
    assert "SOL" in bal
    assert "host clock is -3" in caplog.text  # ~ -30000 ms
    assert len([e for e in fake.log if e["path"] == "/api/v1/time"]) == 1  # learned once


def test_window_from_config_is_signed(fake):
    async def body(ex):
        return await ex.balances()
    assert "SOL" in run(fake, body, clock=lambda: time.time() - 30, bp={"window_ms": 60000}, sync_clock=False)


# --- rate limits and retries ---------------------------------------------------------------------

def test_429_honours_retry_after_then_succeeds(fake):
    fake.add_fault("429", count=2, path="/api/v1/order", method="POST", retry_after="2")
    t = FakeTime()

    async def body(ex):
        return await ex.place_limit(SYM, Side.buy, D(140), D(1), 11)
    o = run(fake, body, t=t)
    assert o.status is OrderStatus.open
    assert len(t.sleeps) == 2 and all(2 <= s <= 2.2 for s in t.sleeps)
    assert fake.placed(11) == 1


def test_429_without_header_backs_off_exponentially(fake):
    fake.add_fault("429", count=3, path="/api/v1/capital", method="GET")
    t = FakeTime()

    async def body(ex):
        return await ex.balances()
    run(fake, body, t=t, backoff_base_s=1.0)
    assert len(t.sleeps) == 3
    for n, s in enumerate(t.sleeps):
        assert 0.5 * 2 ** n <= s <= 1.1 * 2 ** n


def test_429_cooldown_holds_back_other_requests(fake):
    fake.add_fault("429", count=1, path="/api/v1/capital", method="GET", retry_after="5")
    t = FakeTime()

    async def body(ex):
        await asyncio.gather(ex.balances(), ex.last_price(SYM))
    run(fake, body, t=t)
    assert sum(1 for s in t.sleeps if s >= 4.9) >= 1
    assert t.now >= 1005


def test_429_retries_are_bounded(fake):
    fake.add_fault("429", count=50, path="/api/v1/orders", method="GET")

    async def body(ex):
        await ex.open_orders(SYM)
    with pytest.raises(ExchangeError, match="TOO_MANY_REQUESTS.*retries exhausted"):
        run(fake, body, max_retries=4)
    assert [f["count"] for f in fake.faults] == [45]


def test_5xx_before_processing_is_resent_once(fake):
    fake.add_fault("5xx", path="/api/v1/order", method="POST")

    async def body(ex):
        return await ex.place_limit(SYM, Side.buy, D(140), D(1), 12)
    o = run(fake, body)
    assert o.client_id == 12 and fake.placed(12) == 1
    assert len([e for e in posts(fake)]) == 1  # the faulted one never reached the handler
    gets = [e["path"] for e in fake.log if e["method"] == "GET" and e["path"] not in ("/api/v1/markets", "/api/v1/time")]
    assert gets[:1] == ["/api/v1/order"]  # looked up before re-sending


def test_5xx_after_acceptance_is_not_resent(fake):
    fake.add_fault("5xx", path="/api/v1/order", method="POST", after=True, status=502)

    async def body(ex):
        return await ex.place_limit(SYM, Side.sell, D(160), D(1), 13)
    o = run(fake, body)
    assert o.client_id == 13 and o.status is OrderStatus.open
    assert len(posts(fake)) == 1 and fake.placed(13) == 1
    assert len(fake.open_orders()) == 1


def test_timeout_after_acceptance_does_not_double_place(fake):
    fake.add_fault("timeout", path="/api/v1/order", method="POST", delay=1.0)
    t = FakeTime()

    async def body(ex):
        return await ex.place_limit(SYM, Side.buy, D(141), D(1), 14)
    o = run(fake, body, t=t, timeout_s=0.3)
    assert o.client_id == 14 and o.price == D(141)
    assert len(posts(fake)) == 1 and fake.placed(14) == 1
    assert [o.client_id for o in fake.open_orders()] == [14]
    # waited until the first request's signature window (5 s) was over before looking it up
    assert max(t.sleeps) >= 4.0


def test_dropped_connection_after_acceptance_does_not_double_place(fake):
    fake.add_fault("drop", path="/api/v1/order", method="POST")

    async def body(ex):
        return await ex.place_limit(SYM, Side.buy, D(141), D(1), 15)
    assert run(fake, body).client_id == 15
    assert len(posts(fake)) == 1


def test_timeout_on_an_order_that_filled_at_once_finds_it_in_history(fake):
    fake.add_fault("timeout", path="/api/v1/order", method="POST", delay=1.0)

    async def body(ex):
        return await ex.place_market(SYM, Side.buy, D(1), 16)
    o = run(fake, body)
    assert o.status is OrderStatus.filled and o.client_id == 16
    assert len(posts(fake)) == 1
    paths = [e["path"] for e in fake.log if e["method"] == "GET"]
    assert "/wapi/v1/history/orders" in paths


def test_timeout_before_acceptance_places_once(fake):
    fake.add_fault("timeout", path="/api/v1/order", method="POST", delay=1.0, after=False)

    async def body(ex):
        return await ex.place_limit(SYM, Side.buy, D(141), D(1), 18)
    assert run(fake, body).client_id == 18
    assert fake.placed(18) == 1 and len(fake.open_orders()) == 1


def test_cancel_retried_after_timeout_is_quiet(fake):
    async def body(ex):
        await ex.place_limit(SYM, Side.buy, D(141), D(1), 19)
        fake.add_fault("timeout", path="/api/v1/order", method="DELETE", delay=1.0)
        await ex.cancel(SYM, 19)
        return await ex.get_order(SYM, 19)
    o = run(fake, body)
    assert o is not None and o.status is OrderStatus.cancelled
    assert len(posts(fake, method="DELETE")) == 2  # second saw "not found", history says cancelled


def test_no_secrets_in_logs(fake, caplog):
    caplog.set_level(logging.DEBUG)
    fake.add_fault("429", path="/api/v1/order", method="POST")
    fake.add_fault("timeout", path="/api/v1/order", method="POST", delay=1.0)

    async def body(ex):
        await ex.place_limit(SYM, Side.buy, D(141), D(1), 20)
        ex._private = _sign.load_private_key(OTHER_SECRET)
        with pytest.raises(ExchangeError):
            await ex.balances()
        assert PUB not in repr(ex) and SECRET not in repr(ex)
    run(fake, body)
    text = caplog.text
    assert "rate limited" in text and "not re-sending" in text  # the logs did record the events
    assert SECRET not in text and PUB not in text and "X-Signature" not in text
    for e in fake.log:  # and no signature ended up in a URL
        assert "signature" not in json.dumps(e.get("query", {})).lower()


# --- the documented API where it is inconvenient (issues 8 and 9) ----------------------------------

def _raw_get(fake: FakeBackpack, path: str, instruction: str, params: dict) -> httpx.Response:
    """A signed GET made by hand: what Backpack answers, not what the adapter makes of it."""
    ts, window = int(time.time() * 1000), 5000
    params = {k: str(v) for k, v in params.items()}
    sig = _sign.sign(_sign.load_private_key(SECRET), expected_string(instruction, params, str(ts), str(window)))
    return httpx.get(fake.base_url + path, params=params,
                     headers={"X-API-Key": PUB, "X-Signature": sig, "X-Timestamp": str(ts), "X-Window": str(window)})


def test_reused_client_id_is_accepted_and_looked_up_newest_first(fake):
    async def body(ex):
        a = await ex.place_limit(SYM, Side.buy, D(140), D(1), 30)
        await ex.cancel(SYM, 30)
        b = await ex.place_limit(SYM, Side.sell, D(152), D(1), 30)  # same clientId, Backpack takes it
        fake.set_price(D(152))
        return a, b, await ex.get_order(SYM, 30)
    a, b, got = run(fake, body)
    assert fake.placed(30) == 2 and a.exchange_id and b.exchange_id and a.exchange_id != b.exchange_id
    # history is read newest first (sortDirection=Desc): the filled sell, not the cancelled buy
    assert got is not None and got.exchange_id == b.exchange_id and got.status is OrderStatus.filled
    assert [e["query"].get("sortDirection") for e in fake.log if e["path"] == "/wapi/v1/history/orders"] == ["Desc"]


def test_post_only_cross_answers_200_expired_and_adapter_returns_it_closed(fake):
    r = _raw_signed(fake, p := {"symbol": SYM, "side": "Bid", "orderType": "Limit", "price": "155",
                                "quantity": "1", "postOnly": True, "clientId": 4}, p)
    assert r.status_code == 200 and r.json()["status"] == "Expired" and "expiryReason" not in r.json()

    async def body(ex):
        o = await ex.place_limit(SYM, Side.buy, D(155), D(1), 5)
        return o, await ex.balances(), await ex.get_order(SYM, 5), await ex.open_orders(SYM)
    o, bal, got, opened = run(fake, body)
    assert (o.status, o.filled_qty, o.reason, o.client_id) == (OrderStatus.cancelled, 0, "Expired", 5)
    assert o.exchange_id
    assert bal["USDC"].locked == 0 and opened == []
    assert got is not None and got.status is OrderStatus.cancelled and got.reason == "Expired: PostOnlyTaker"


def test_market_order_without_liquidity_comes_back_expired_with_what_filled(fake):
    fake.account.markets[SYM].liquidity = D("0.4")

    async def body(ex):
        return await ex.place_market(SYM, Side.sell, D(1), 6)
    o = run(fake, body)
    assert (o.status, o.filled_qty, o.reason) == (OrderStatus.cancelled, D("0.4"), "Expired")


def test_price_outside_the_band_is_invalid_price_and_the_band_follows_the_price(fake):
    async def body(ex):
        m = await ex.market(SYM)
        with pytest.raises(OrderRejected) as info:
            await ex.place_limit(SYM, Side.buy, D(112), D(1), 7)  # 150 × 0.75 = 112.5
        fake.set_price(D(140))  # now 105 .. 175
        return m, info.value, await ex.place_limit(SYM, Side.buy, D(112), D(1), 8)
    m, err, ok = run(fake, body)
    assert m.price_band == (D("0.75"), D("1.25")) and m.state == "Open"
    assert "400 INVALID_PRICE: Price is too far from the last active price" in str(err)
    assert ok.status is OrderStatus.open


def test_book_state_is_read_again(fake):
    async def body(ex):
        first = await ex.market(SYM)
        fake.account.markets[SYM].state = "PostOnly"
        return first, await ex.market(SYM)
    first, later = run(fake, body, markets_ttl_s=0)
    assert (first.state, later.state) == ("Open", "PostOnly")


def test_system_fills_have_null_trade_ids_and_fill_type_user_leaves_them_out(fake):
    async def body(ex):
        start = int(time.time() * 1000) - 1
        o = await ex.place_limit(SYM, Side.sell, D(151), D(1), 9)
        fake.system_fill(SYM, "Ask", D("0.5"))
        fake.set_price(D(151))
        return o, await ex.fills_since(SYM, start)
    o, fills = run(fake, body)
    sent = [e["query"] for e in fake.log if e["path"] == "/wapi/v1/history/fills"]
    raw = _raw_get(fake, "/wapi/v1/history/fills", "fillHistoryQueryAll", {"symbol": SYM}).json()
    assert sorted(str(r["tradeId"]) for r in raw)[-1] == "None" and len(raw) == 2  # venue shows both
    assert [(f.client_id, f.order_id) for f in fills] == [(9, o.exchange_id)]  # we book ours only
    assert sent and all(q["fillType"] == "User" and q["sortDirection"] == "Desc" for q in sent)
    system = next(r for r in raw if r["tradeId"] is None)
    # should one come anyway, its id is stable (the same on every poll) and marked as synthetic
    assert backpack.parse_fill(system).trade_id == backpack.parse_fill(dict(system)).trade_id
    assert backpack.parse_fill(system).trade_id.startswith("sys-")


def test_history_default_sort_is_ascending_and_sort_direction_works(fake):
    async def body(ex):
        for cid, price in ((1, 140), (2, 141), (3, 142)):
            await ex.place_limit(SYM, Side.buy, D(price), D("0.1"), cid)
        fake.set_price(D(139))
    run(fake, body)
    def ids(path: str, instruction: str, **extra) -> list:
        return [r["clientId"] for r in _raw_get(fake, path, instruction, {"symbol": SYM, **extra}).json()]
    assert ids("/wapi/v1/history/orders", "orderHistoryQueryAll") == [1, 2, 3]
    assert ids("/wapi/v1/history/orders", "orderHistoryQueryAll", sortDirection="Desc") == [3, 2, 1]
    assert ids("/wapi/v1/history/fills", "fillHistoryQueryAll") == ["1", "2", "3"]
    assert ids("/wapi/v1/history/fills", "fillHistoryQueryAll", sortDirection="Desc") == ["3", "2", "1"]


def test_a_fill_shown_late_is_seen_later_with_its_true_time(fake):
    async def body(ex):
        start = int(time.time() * 1000) - 1
        await ex.place_limit(SYM, Side.sell, D(151), D(1), 10)
        fake.hide_fills()
        fake.set_price(D(151))
        before = await ex.fills_since(SYM, start)
        await asyncio.sleep(0.05)
        shown_at = fake.now_ms()
        assert fake.reveal() == 1
        return before, await ex.fills_since(SYM, start), shown_at
    before, after, shown_at = run(fake, body)
    assert before == []
    assert [f.client_id for f in after] == [10] and after[0].timestamp_ms < shown_at


def test_clock_drift_mid_run_is_resynced_and_the_request_succeeds(fake, caplog):
    caplog.set_level(logging.WARNING)
    t = FakeTime()

    async def body(ex):
        await ex.balances()
        fake.clock_offset_ms = 30_000  # Backpack's clock jumps ahead: our signatures look 30 s old
        bal = await ex.balances()
        t.now += backpack.CLOCK_RESYNC_S  # and the cadence re-reads it too
        await ex.balances()
        return bal
    assert "SOL" in run(fake, body, t=t)
    caps = [e for e in fake.log if e["path"] == "/api/v1/capital"]
    assert len(caps) == 4 and [e.get("authenticated", False) for e in caps] == [True, False, True, True]
    assert len([e for e in fake.log if e["path"] == "/api/v1/time"]) == 3  # start, expiry, cadence
    assert "request expired; re-reading its clock" in caplog.text


def test_expired_request_is_retried_once_only(fake):
    async def body(ex):
        await ex.balances()
        fake.clock_offset_ms = 30_000
        ex._clock = lambda: time.time() - 60  # the host clock keeps falling behind between readings
        ex._sync_clock = _noop  # and the re-read learns nothing
        await ex.balances()

    async def _noop():
        return None
    with pytest.raises(ExchangeError, match="Request has expired .*host clock") as info:
        run(fake, body)
    assert not isinstance(info.value, (AuthError, OrderRejected))
    assert len([e for e in fake.log if e["path"] == "/api/v1/capital"]) == 3


def test_auth_failure_on_an_order_is_auth_error_not_rejection(fake):
    async def body(ex):
        ex._private = _sign.load_private_key(OTHER_SECRET)
        await ex.place_limit(SYM, Side.buy, D(140), D(1), 11)
    with pytest.raises(AuthError, match="401 INVALID_SIGNATURE") as info:
        run(fake, body)
    assert not isinstance(info.value, OrderRejected) and fake.placed(11) == 0


def test_outage_is_one_line_then_recovers(fake):
    t = FakeTime()

    async def body(ex):
        await ex.balances()
        fake.go_down("refuse")
        with pytest.raises(ExchangeError) as refused:
            await ex.open_orders(SYM)
        fake.come_up()
        fake.go_down("503")
        with pytest.raises(ExchangeError) as maintenance:
            await ex.open_orders(SYM)
        fake.come_up()
        return refused.value, maintenance.value, await ex.open_orders(SYM)
    refused, maintenance, orders = run(fake, body, t=t, max_retries=2)
    assert "cannot talk to Backpack" in str(refused) and "\n" not in str(refused)
    assert refused.__cause__ is None and refused.__suppress_context__  # no chained traceback
    assert str(maintenance) == "open orders SOL_USDC: Backpack answered 503 MAINTENANCE: System under maintenance"
    assert orders == []


def test_outage_shorter_than_the_retries_is_ridden_out():
    with FakeBackpack(PUB) as fake:
        async def main():
            ex = BackpackExchange(*venue(fake.base_url), PUB, SECRET, backoff_base_s=0.1, backoff_max_s=0.3,
                                  max_retries=8, min_interval_s=0)
            try:
                await ex.balances()
                fake.go_down("refuse", for_s=0.4)
                return await ex.balances()
            finally:
                await ex.close()
        assert asyncio.run(main())["SOL"].available == D(10)
        assert fake.down is None


def test_two_markets_share_one_account_and_its_sol(fake):
    async def body(a, b):
        await a.place_limit("SOL_USDC", Side.sell, D(160), D(6), 1)
        with pytest.raises(OrderRejected, match="INSUFFICIENT_FUNDS"):
            await b.place_limit("SOL_USDT", Side.sell, D(160), D(6), 1)  # only 4 SOL left for it
        await b.place_limit("SOL_USDT", Side.sell, D(160), D(4), 1)
        fake.set_price(D(160), "SOL_USDT")
        return (await a.balances(), await b.balances(), await a.fills_since("SOL_USDC", 0),
                await b.fills_since("SOL_USDT", 0), await a.open_orders("SOL_USDC"))

    async def main():
        t = FakeTime()
        mk = lambda: BackpackExchange(*venue(fake.base_url), PUB, SECRET, sleep=t.sleep, monotonic=t.monotonic,
                                      min_interval_s=0)
        a, b = mk(), mk()
        try:
            return await body(a, b)
        finally:
            await a.close()
            await b.close()
    bal_a, bal_b, fills_a, fills_b, open_a = asyncio.run(main())
    assert bal_a == bal_b  # one account, whoever asks
    assert bal_a["SOL"].available == 0 and bal_a["SOL"].locked == D(6)
    assert bal_a["USDT"].available == D(10000) + D(640) * (1 - D("0.0008"))
    assert fills_a == [] and [(f.symbol, f.qty) for f in fills_b] == [("SOL_USDT", D(4))]
    assert [o.qty for o in open_a] == [D(6)]


def test_side_doors_cancel_and_move_coins_behind_the_bots_backs(fake):
    async def body(ex):
        await ex.place_limit(SYM, Side.buy, D(140), D(1), 12)
        await ex.place_limit("ETH_USDC", Side.buy, D(2900), D("0.1"), 13)
        assert fake.cancel_all(SYM) == 1
        fake.move_balance("SOL", D(-4))
        return (await ex.open_orders(SYM), await ex.get_order(SYM, 12), await ex.open_orders("ETH_USDC"),
                await ex.balances())
    opened, got, eth, bal = run(fake, body)
    assert opened == [] and got is not None and got.status is OrderStatus.cancelled
    assert [o.client_id for o in eth] == [13]
    assert bal["SOL"].available == D(6) and bal["USDC"].locked == D(290)


# --- parsing -------------------------------------------------------------------------------------

@pytest.mark.parametrize("status,expected", [
    ("New", OrderStatus.open), ("PartiallyFilled", OrderStatus.open), ("Filled", OrderStatus.filled),
    ("Cancelled", OrderStatus.cancelled), ("Expired", OrderStatus.cancelled),
    ("TriggerFailed", OrderStatus.rejected),
])
def test_status_mapping(status, expected):
    o = parse_order({"id": "1", "clientId": 5, "symbol": SYM, "side": "Ask", "price": "1.5", "quantity": "2",
                     "executedQuantity": "0.5", "status": status})
    assert (o.status, o.side, o.filled_qty, o.exchange_id) == (expected, Side.sell, D("0.5"), "1")


def test_unknown_status_is_an_error():
    with pytest.raises(ValueError):
        parse_order({"symbol": SYM, "side": "Bid", "status": "Weird"})


def test_retry_after_http_date():
    r = httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"})
    assert backpack._retry_after_s(r, 1445412480.0) == pytest.approx(10.0)
    assert backpack._retry_after_s(httpx.Response(429, headers={"Retry-After": "1.5"}), 0) == 1.5
    assert backpack._retry_after_s(httpx.Response(429), 0) is None


# --- standalone fake (also used by the systemd-container test) -----------------------------------

def _spawn(state: Path):
    import subprocess
    proc = subprocess.Popen([sys.executable, fake_backpack.__file__,
                             "--port", "0", "--api-key", PUB, "--state", str(state)],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("fake backpack listening on "), line
    return proc, line.split()[-1]


def test_standalone_fake_keeps_state_across_restarts(tmp_path):
    state = tmp_path / "fake.json"
    state.write_text(json.dumps({"price": "150", "balances": {"SOL": "3", "USDC": "500"}}))
    proc, url = _spawn(state)
    t = FakeTime()
    try:
        async def place():
            ex = BackpackExchange(*venue(url), PUB, SECRET, sleep=t.sleep, monotonic=t.monotonic)
            try:
                await ex.place_limit(SYM, Side.sell, D(160), D(1), 77)
                return await ex.balances()
            finally:
                await ex.close()
        bal = asyncio.run(place())
        assert bal["SOL"].available == D(2) and bal["USDC"].total == D(500)
        assert httpx.post(url + "/_price", json={"price": "161"}).json() == {"fills": 1}
    finally:
        proc.terminate()
        proc.wait(10)
    proc, url = _spawn(state)
    try:
        async def check():
            ex = BackpackExchange(*venue(url), PUB, SECRET, sleep=t.sleep, monotonic=t.monotonic)
            try:
                return await ex.get_order(SYM, 77), await ex.fills_since(SYM, 0), await ex.last_price(SYM)
            finally:
                await ex.close()
        order, fills, price = asyncio.run(check())
        assert order is not None and order.status is OrderStatus.filled
        assert [f.client_id for f in fills] == [77] and price == D(161)
        assert httpx.post(url + "/_fault", json={"kind": "429", "count": 1, "path": "/api/v1/ticker",
                                                 "retry_after": "3"}).json() == {"pending": 1}
        r = httpx.get(url + "/api/v1/ticker", params={"symbol": SYM})
        assert r.status_code == 429 and r.headers["Retry-After"] == "3"
        assert r.json()["code"] == "TOO_MANY_REQUESTS"
        assert httpx.get(url + "/api/v1/ticker", params={"symbol": SYM}).json()["lastPrice"] == "161"
        assert httpx.get(url + "/_state").json()["price"] == "161"
        # the side doors, as a container test drives them
        assert httpx.post(url + "/_balance", json={"asset": "SOL", "delta": "-1"}).json()["SOL"]["available"] == "1"
        asyncio.run(_standalone_order(url, t))
        assert httpx.post(url + "/_cancel_all", json={}).json() == {"cancelled": 1}
        assert httpx.post(url + "/_hide_fills", json={"on": True}).json() == {"hide_fills": True}
        httpx.post(url + "/_system_fill", json={"symbol": SYM, "side": "Bid", "quantity": "0.5"})
        assert len(httpx.get(url + "/_state").json()["fills"]) == 1
        assert httpx.post(url + "/_reveal").json() == {"revealed": 1}
        assert httpx.post(url + "/_market", json={"symbol": SYM, "state": "PostOnly"}).json()["orderBookState"] == "PostOnly"
        assert httpx.post(url + "/_down", json={"mode": "503"}).status_code == 200
        assert wait_until(lambda: httpx.get(url + "/api/v1/time").status_code == 503, 5)
        httpx.post(url + "/_up")
        httpx.post(url + "/_down", json={"mode": "refuse", "for_s": 0.5})
        assert wait_until(lambda: _refused(url + "/api/v1/time"), 5), "the port still answers"
        assert wait_until(lambda: not _refused(url + "/api/v1/time"), 5), "the fake did not come back"
    finally:
        proc.terminate()
        proc.wait(10)


async def _standalone_order(url: str, t: FakeTime) -> None:
    ex = BackpackExchange(*venue(url), PUB, SECRET, sleep=t.sleep, monotonic=t.monotonic)
    try:
        await ex.place_limit(SYM, Side.buy, D(150), D("0.1"), 78)
    finally:
        await ex.close()


def _refused(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
    except httpx.TransportError:
        return True
    return False


def test_implements_every_exchange_method_with_the_same_parameters():
    import inspect

    from gridbot.exchange.base import Exchange
    for name, fn in vars(Exchange).items():
        if name.startswith("_") or not callable(fn):
            continue
        mine = getattr(BackpackExchange, name)
        assert inspect.iscoroutinefunction(mine), name
        assert list(inspect.signature(mine).parameters) == list(inspect.signature(fn).parameters), name
