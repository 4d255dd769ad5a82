"""Issue 9: the grid heals itself on a real venue. The runner's ``Bot`` in-process, through the real
Backpack adapter, against the fake Backpack server (tests/gridbot_testsupport/fake_backpack.py) and its side doors."""
from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal as D

import pytest

from gridbot.bot import orders
from gridbot import strategy as st
from gridbot.exchange import _sign
from gridbot.status_http import StatusServer, metrics_text
from gridbot.store import CANCELLED, REJECTED

from .conftest import (OTHER_SECRET, Recorder, Sock, books_agree, config, make_bot, posts, reaped,
                       reconcile_due, run, sigterm, spawn_runner, start, venue_ids)


# ------------------------------------------------------------------ 1. every answer understood

def test_a_post_only_expired_answer_is_a_rejection_learnt_at_once_and_the_level_comes_back(fake, tmp_path, caplog):
    b = make_bot(tmp_path, fake)
    real = b.ex.place_limit
    crossed: list[int] = []

    async def crossing(symbol, side, price, qty, client_id, post_only=True):
        if side is st.SELL and price == D(150) and not crossed:  # the market jumps just before our post-only sell
            crossed.append(client_id)
            fake.set_price(D(151))
        return await real(symbol, side, price, qty, client_id, post_only)

    b.ex.place_limit = crossing  # type: ignore[method-assign]

    async def body() -> None:
        await start(b)
        fake.set_price(D(145))  # the buy at 145 fills; its counter-sell at 150 meets a jump to 151
        await b.cycle()
        (cid,) = crossed
        row = b.store.order(cid)
        assert row.status == REJECTED and "Expired" in row.note
        assert cid not in b.state.by_cid and b.state.held and b.snapshot()["missing_levels"] == 1
        fake.set_price(D(148))
        await asyncio.sleep(0.1)  # the hold (0.05 s) passes
        await b.cycle()
        assert not b.state.held and b.snapshot()["missing_levels"] == 0
        books_agree(b, fake)
        assert any(o.price == D(150) and o.side == "Ask" for o in fake.open_orders())

    with caplog.at_level(logging.INFO, logger="gridbot"):
        run(b, body)
    assert any("closed by the venue at once: Expired" in r.getMessage() for r in caplog.records)


def test_a_market_rebalance_that_expires_books_its_part_and_never_sticks_even_across_restarts(fake, tmp_path, caplog):
    fake.account.markets["SOL_USDC"].liquidity = D("0.6")  # one sell's worth of base, of the 1.0 wanted
    b = make_bot(tmp_path, fake)
    with caplog.at_level(logging.INFO, logger="gridbot"):
        run(b, lambda: start(b))
    assert b.state.phase == st.RUNNING and not b.state.markets
    (m,) = [r for r in b.store.orders() if r.kind == "market"]
    assert m.status == CANCELLED and m.filled == D("0.6")
    assert b.state.inventory == D("0.6") - D("0.6") * D("0.001")  # the part that filled, net of the taker fee
    assert [o.side for o in fake.open_orders()].count("Ask") == 1 and b.snapshot()["missing_levels"] == 1
    warn = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("market order" in w and "ended cancelled with 0.6 of" in w for w in warn), warn
    assert any("sell levels stay idle" in w for w in warn), warn
    books_agree(b, fake)
    b.store.close()

    # a state an older runner left stuck in `rebalancing` (its market order Expired on the venue) is settled
    tmp2 = tmp_path / "old"
    tmp2.mkdir()
    b = make_bot(tmp2, fake)

    async def stuck() -> None:
        b._market_ended = lambda cid, o: []  # type: ignore[method-assign]  # what the old runner did: nothing
        await start(b)

    run(b, stuck)
    assert b.state.phase == st.REBALANCING and b.state.markets
    b.store.close()
    b = make_bot(tmp2, fake)
    run(b, lambda: start(b))
    assert b.state.phase == st.RUNNING and not b.state.markets


def test_a_short_rebalance_is_refilled_at_the_reconciles_with_backoff_until_every_level_rests(fake, tmp_path, caplog):
    mk = fake.account.markets["SOL_USDC"]
    mk.liquidity = D("0.3")  # of the 1.0 the two sells need: neither sell is covered
    b = make_bot(tmp_path, fake)
    b.health.grace["missing"] = 0.0

    def markets() -> list:
        return [r for r in b.store.orders() if r.kind == "market"]

    async def body() -> None:
        await start(b)
        assert st.missing(b.state) == [2, 3] and len(markets()) == 1 and not b.healthy()
        reconcile_due(b)
        await b.cycle()  # the reconcile's refill buys what both sells lack; it ends short again
        first = markets()[1]
        assert first.qty == D("0.71") and first.filled == D("0.3") and first.status == CANCELLED
        assert st.missing(b.state) == [3] and [o.price for o in fake.open_orders() if o.side == "Ask"] == [D(155)]
        assert 59 < b._refill_due - time.monotonic() <= 60  # next refill one reconcile interval later
        reconcile_due(b)
        await b.cycle()  # a reconcile inside the backoff: no refill
        assert len(markets()) == 2 and st.missing(b.state) == [3]
        mk.liquidity = None
        b._refill_due = 0.0  # the backoff has passed
        reconcile_due(b)
        await b.cycle()
        assert len(markets()) == 3 and markets()[2].qty == D("0.41") and not b.state.markets
        assert 119 < b._refill_due - time.monotonic() <= 120  # it doubled
        assert st.missing(b.state) == [] and len(fake.open_orders()) == 4
        books_agree(b, fake)
        assert b.healthy(), b.reasons()
        reconcile_due(b)
        await b.cycle()  # every level rests: the backoff is reset, nothing more is bought
        assert (b._refills, b._refill_due, len(markets())) == (0, 0.0, 3)

    with caplog.at_level(logging.INFO, logger="gridbot"):
        run(b, body)
    msgs = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert any(lv == logging.INFO and "refill: buying 0.71 SOL for 2 idle sell levels" in m for lv, m in msgs), msgs
    assert any(lv == logging.WARNING and "refill bought 0.3 of 0.71" in m and "1 sell levels stay idle" in m
               for lv, m in msgs), msgs
    assert b.state.inventory == D("0.3") * 2 * D("0.999") + D("0.41") * D("0.999")  # every buy booked once, net
    assert b.store.fill_count() == b.state.fills


# ------------------------------------------------------------------ 2. continuous reconciliation

def test_orders_cancelled_behind_the_bots_back_are_placed_again_by_the_periodic_reconcile(fake, tmp_path):
    b = make_bot(tmp_path, fake)

    async def body() -> None:
        await start(b)
        before = venue_ids(fake)
        assert len(before) == 4
        assert fake.cancel_all("SOL_USDC") == 4  # the web UI, a maintenance
        await b.cycle()  # not due yet: the bot does not know
        assert venue_ids(fake) == [] and len(b.state.by_cid) == 4
        reconcile_due(b)
        await b.cycle()
        after = venue_ids(fake)
        assert len(after) == 4 and not set(after) & set(before)
        books_agree(b, fake)
        assert all(b.store.order(c).status == CANCELLED for c in before)

    run(b, body)


def test_reconcile_runs_on_its_cadence_and_costs_two_requests(fake, tmp_path):
    b = make_bot(tmp_path, fake, cfg=config(fake.base_url, reconcile_interval_s=1))

    async def body() -> int:
        await start(b)
        n = len(fake.log)
        t0 = time.monotonic()
        cycles = 0
        while time.monotonic() - t0 < 2.5:
            await b.cycle()
            cycles += 1
            await asyncio.sleep(0.05)
        return cycles, fake.log[n:]

    cycles, log = run(b, body)
    opens = [e for e in log if e["path"] == "/api/v1/orders"]
    fills = [e for e in log if e["path"] == "/wapi/v1/history/fills"]
    assert 2 <= len(opens) <= 3  # one per second, not one per cycle
    assert len(fills) == cycles + len(opens)  # each cycle reads fills once, each reconcile once more


def test_late_fills_are_caught_by_the_reconcile_and_system_fills_never_booked(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(orders, "FILL_OVERLAP_MS", 0)  # the poll re-reads nothing before the last fill
    b = make_bot(tmp_path, fake)

    async def body() -> None:
        await start(b)
        fills0 = b.state.fills
        fake.hide_fills(True)
        fake.set_price(D(145))  # the buy at 145 fills, but the venue shows it late
        fake.hide_fills(False)
        await asyncio.sleep(0.02)
        fake.set_price(D(156))  # ... after this sell's fill, which is shown at once
        await b.cycle()
        assert b.state.fills == fills0 + 1  # the poll saw only the sell
        fake.system_fill("SOL_USDC", "Bid", D("0.2"))  # a collateral conversion: not ours
        assert fake.reveal() == 1
        await b.cycle()
        assert b.state.fills == fills0 + 1  # the poll reads from the last fill on: still missed
        reconcile_due(b)
        await b.cycle()
        assert b.state.fills == fills0 + 2  # the reconcile's look-back found it, with its true time
        books_agree(b, fake)

    run(b, body)
    assert b.store.fill_count() == b.state.fills


# ------------------------------------------------------------------ 3. lost levels come back

def test_a_refused_level_is_retried_with_backoff_counted_missing_and_placed_once_funds_return(fake, tmp_path):
    b = make_bot(tmp_path, fake)
    b.hold_base_s = 0.2

    async def body() -> list[float]:
        await start(b)
        usdc = fake.account.available["USDC"]
        fake.set_price(D(156))  # the sell at 155 fills; its counter-buy at 150 will have no funds:
        fake.move_balance("USDC", available=D(0))  # the user spends the quote
        tries: list[float] = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:
            n = len(posts(fake))
            await b.cycle()
            tries += [time.monotonic() - t0] * (len(posts(fake)) - n)
            await asyncio.sleep(0.02)
        snap = b.snapshot()
        assert snap["missing_levels"] == 1 and snap["held_levels"] == 1
        assert b.state.gaps[2].side is st.BUY  # not given up
        fake.move_balance("USDC", available=usdc)
        await asyncio.sleep(min(b.hold_max_s, 0.2 * 2 ** 4))
        for _ in range(3):
            await b.cycle()
        assert b.snapshot()["missing_levels"] == 0
        books_agree(b, fake)
        return tries

    tries = run(b, body)
    # 0, +0.2, +0.4, +0.8 ...: 3 or 4 tries in 2 s, where a retry per cycle would have made ~80
    assert 3 <= len(tries) <= 5, tries
    gaps = [b - a for a, b in zip(tries, tries[1:])]
    assert all(later > earlier for earlier, later in zip(gaps, gaps[1:])), gaps


# ------------------------------------------------------------------ 4. market rules

def test_levels_outside_the_price_band_wait_without_a_request_and_come_when_the_price_nears(fake, tmp_path):
    # band at 150: 112.5 .. 187.5; lines 100 125 150 175 200: the buy at 100 and the sell at 200 wait
    cfg = config(fake.base_url, lower_price="100", upper_price="200", qty_per_level="0.1")
    b = make_bot(tmp_path, fake, cfg)

    async def body() -> None:
        await start(b)
        assert sorted(o.price for o in fake.open_orders()) == [D(125), D(175)]
        assert b.snapshot()["missing_levels"] == 2
        fake.set_price(D(130))  # band 97.5 .. 162.5: the buy at 100 may go now
        await b.cycle()
        assert D(100) in {o.price for o in fake.open_orders()}

    run(b, body)
    prices = [p["params"].get("price") for p in fake.log if p["method"] == "POST" and p["path"] == "/api/v1/order"]
    assert prices.count("200") == 0 and prices.count("100") == 1  # nothing burnt on the band: one placement


def test_a_closed_book_places_nothing_and_the_grid_returns_when_it_opens(fake, tmp_path):
    b = make_bot(tmp_path, fake)

    async def body() -> None:
        await start(b)
        fake.account.markets["SOL_USDC"].state = "CancelOnly"  # maintenance: the venue cancels everything
        fake.cancel_all("SOL_USDC")
        n = len(posts(fake))
        reconcile_due(b)
        await b.cycle()
        reconcile_due(b)
        await b.cycle()
        assert len(posts(fake)) == n and venue_ids(fake) == []  # no order sent into a closed book
        assert b.snapshot()["missing_levels"] == 4
        fake.account.markets["SOL_USDC"].state = "PostOnly"  # limits only: the grid is post-only
        reconcile_due(b)
        await b.cycle()
        assert len(venue_ids(fake)) == 4
        books_agree(b, fake)

    run(b, body)


# ------------------------------------------------------------------ 6. keys

def test_a_refused_key_halts_trading_with_one_line_and_recovers_by_itself(fake, tmp_path, caplog):
    b = make_bot(tmp_path, fake)
    b.auth_retry_s = 0.3
    good = b.ex._private

    async def body() -> None:
        await start(b)
        b.ex._private = _sign.load_private_key(OTHER_SECRET)  # the key was revoked / replaced
        fake.set_price(D(145))  # a fill the bot cannot see yet
        n = len(posts(fake))
        for _ in range(6):
            await b._guarded_cycle()
            await asyncio.sleep(0.1)
        assert b.auth_halted and len(posts(fake)) == n  # no order attempted while halted
        snap = b.snapshot()
        assert snap["degraded"] and "halted: the exchange refused the API key" in snap["health"]["reasons"]
        assert b.status_line().startswith("DEGRADED: halted: the exchange refused the API key")
        signed = [e for e in fake.log[-40:] if e["path"] == "/api/v1/capital"]
        assert 1 <= len(signed) <= 3  # the slow probe, not a request per cycle
        b.ex._private = good
        await asyncio.sleep(0.35)
        for _ in range(3):
            await b._guarded_cycle()
        assert not b.auth_halted and b.snapshot()["health"]["ok"]
        books_agree(b, fake)

    with caplog.at_level(logging.INFO, logger="gridbot"):
        run(b, body)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "401 INVALID_SIGNATURE" in errors[0] and "no orders are placed" in errors[0]
    assert not [r for r in caplog.records if "rejected" in r.getMessage()]  # never taken for a rejection
    assert any("accepted again" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------ 7. outages at run time

def test_an_outage_keeps_the_loop_going_logs_one_line_per_kind_and_recovers(fake, tmp_path, caplog):
    b = make_bot(tmp_path, fake)
    b.health.grace["exchange"] = 0.0

    async def body() -> None:
        await start(b)
        fake.go_down("503")
        for _ in range(3):
            await b._guarded_cycle()
            b.heartbeat()
        assert "exchange unavailable (maintenance or server error)" in b.snapshot()["health"]["reasons"]
        fake.come_up()
        fake.go_down("refuse")
        for _ in range(3):
            await b._guarded_cycle()
        assert not b.healthy()
        fake.come_up()
        fake.cancel_all("SOL_USDC")  # and the maintenance took the orders with it
        await b._guarded_cycle()  # the failed cycles asked for a reconcile
        assert b.healthy(), b.reasons()
        books_agree(b, fake)
        assert len(venue_ids(fake)) == 4

    with caplog.at_level(logging.DEBUG, logger="gridbot"):
        run(b, body)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name == "gridbot"]
    assert len(errors) == 2, errors  # one per kind: maintenance, refused connections
    assert not any(r.exc_info for r in caplog.records)
    assert any("exchange reachable again" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------ 8. healthy means trading

def test_healthz_metrics_and_status_say_degraded_while_levels_are_missing(fake, tmp_path):
    b = make_bot(tmp_path, fake)
    b.health.grace["missing"] = 0.2
    server = StatusServer(0, b.snapshot, b.healthy, b.reasons)

    async def body() -> None:
        await start(b)
        b.heartbeat()
        assert server.route("GET", "/healthz")[0] == 200
        fake.account.markets["SOL_USDC"].state = "CancelOnly"
        fake.cancel_all("SOL_USDC")
        reconcile_due(b)
        await b.cycle()
        assert server.route("GET", "/healthz")[0] == 200  # inside the grace
        await asyncio.sleep(0.25)
        code, _, body_ = server.route("GET", "/healthz")
        assert code == 503 and b"4 of 4 levels without an order" in body_
        m = metrics_text(b.snapshot())
        assert 'gridbot_degraded{instance="t",symbol="SOL_USDC"} 1' in m
        assert 'gridbot_degraded_reason{instance="t",symbol="SOL_USDC",reason="missing"} 1' in m
        assert 'gridbot_missing_levels{instance="t",symbol="SOL_USDC"} 4' in m
        assert "DEGRADED: 4 of 4 levels without an order" in b.status_line()
        fake.account.markets["SOL_USDC"].state = "Open"
        reconcile_due(b)
        await b.cycle()
        assert server.route("GET", "/healthz")[0] == 200
        assert 'gridbot_degraded{instance="t",symbol="SOL_USDC"} 0' in metrics_text(b.snapshot())

    run(b, body)


def test_out_of_range_and_stopped_grids_are_degraded(fake, tmp_path):
    b = make_bot(tmp_path, fake, config(fake.base_url, stop_loss="130"))
    b.health.grace["range"] = 0.0

    async def body() -> None:
        await start(b)
        assert b.healthy()
        fake.set_price(D(138))  # below the grid, above the stop-loss
        await b.cycle()
        assert any(r.startswith("not trading: price 138 outside the grid") for r in b.reasons())
        fake.set_price(D(129))
        await b.cycle()
        assert b.state.phase == st.STOPPED and any(r.startswith("grid stopped") for r in b.reasons())

    run(b, body)


# ------------------------------------------------------------------ 7. outages at start

def test_start_waits_for_the_exchange_and_reports_ready_degraded_after_the_grace(fake, tmp_path):
    b = make_bot(tmp_path, fake)
    b.notifier = rec = Recorder()
    b.start_grace_s = 0.3
    b.health.grace["exchange"] = 0.0
    fake.go_down("503")

    async def body() -> None:
        import asyncio as aio

        b._stop_event = aio.Event()
        task = aio.ensure_future(b.start_up())
        await aio.sleep(1.0)
        assert not task.done()
        assert rec.sent and rec.sent[0]["STATUS"].startswith("waiting for exchange: unavailable")
        readies = [m for m in rec.sent if m.get("READY") == "1"]
        assert len(readies) == 1 and readies[0]["STATUS"].startswith("waiting for exchange")
        assert not b.healthy() and b.snapshot()["phase"] == "starting"
        fake.come_up()
        assert await aio.wait_for(task, 10)
        assert b.healthy(), b.reasons()
        assert len(venue_ids(fake)) == 4

    run(b, body)


@pytest.mark.parametrize("mode", ["refuse", "503"])
def test_sigterm_while_waiting_for_the_exchange_exits_0_at_once_without_a_traceback(fake, tmp_path, mode):
    fake.go_down(mode)
    sock = Sock(str(tmp_path / "notify.sock"))
    with reaped(spawn_runner(tmp_path, fake, str(tmp_path / "notify.sock"))) as proc:
        sock.wait_for("STATUS=waiting for exchange", 40)
        time.sleep(0.5)  # inside the adapter's retries now
        t0 = time.monotonic()
        out = sigterm(proc, timeout=10)
        took = time.monotonic() - t0
    assert proc.returncode == 0, out
    assert took < 2.0, took
    assert "Traceback" not in out and "crashed" not in out
    kind = "unreachable" if mode == "refuse" else "unavailable"
    assert len([line for line in out.splitlines() if line.startswith("<3>")]) == 1, out  # one line for the kind
    assert f"exchange {kind}" in out
    assert not any("READY=1" in m for m in sock.msgs)


def test_a_bot_started_during_an_outage_trades_once_the_exchange_is_back(fake, tmp_path):
    fake.go_down("refuse")
    sock = Sock(str(tmp_path / "notify.sock"))
    with reaped(spawn_runner(tmp_path, fake, str(tmp_path / "notify.sock"))) as proc:
        sock.wait_for("STATUS=waiting for exchange: unreachable", 40)
        fake.come_up()
        ready = sock.wait_for("READY=1", 60)
        assert "4/4 orders" in ready and "DEGRADED" not in ready
        assert len(fake.open_orders()) == 4
        out = sigterm(proc)
    assert proc.returncode == 0, out
    assert "Traceback" not in out and "exchange reachable again" in out


def test_list_shows_a_degraded_bot_from_its_figures(fake, tmp_path):
    from types import SimpleNamespace

    from gridbot import _view, figures

    b = make_bot(tmp_path, fake)
    b.health.grace["missing"] = 0.0
    run(b, lambda: start(b))
    fig = figures.compute("t", "backpack", b.state, b.price, time.time(), health=b.reasons())
    row = SimpleNamespace(name="t", unit="gridbot@t.service", load_state="loaded", active_state="active",
                          sub_state="running", main_pid=1, since_us=0, n_restarts=0, result="success", exit_status=0,
                          cpu_ns=None, memory_bytes=None, tasks=None, status_text="", enabled=False)
    rec = _view.record(row, fig)
    assert rec["degraded"] is False and rec["health"] == [] and rec["state"] == "running" and not rec["bad"]
    b.state.gaps[0].cid = 0  # a level without an order
    fig = figures.compute("t", "backpack", b.state, b.price, time.time(), health=b.reasons())
    rec = _view.record(row, fig)
    assert rec["degraded"] is True and rec["health"] == ["1 of 4 levels without an order"]
    assert rec["state"] == "running/degraded" and rec["bad"]


def test_a_bot_stopped_while_waiting_starts_again_and_is_not_taken_for_a_lost_state(fake, tmp_path):
    fake.go_down("503")
    sock = Sock(str(tmp_path / "notify.sock"))
    for attempt in range(2):  # the first start reserved an epoch on the account before the stop
        with reaped(spawn_runner(tmp_path, fake, str(tmp_path / "notify.sock"))) as proc:
            sock.wait_for("STATUS=waiting for exchange", 40)
            out = sigterm(proc, timeout=10)
        assert proc.returncode == 0 and "missing or empty" not in out, out
    fake.come_up()
    with reaped(spawn_runner(tmp_path, fake, str(tmp_path / "notify.sock"))) as proc:
        sock.wait_for("READY=1", 60)
        assert len(fake.open_orders()) == 4
        out = sigterm(proc)
    assert proc.returncode == 0, out
