"""Issue 9's long run: minutes of accelerated trading through the real adapter against the fake Backpack,
with random venue surprises (cancel-all behind the bot's back, expired post-only orders, band moves,
clock jumps, outages, late fills, system fills). It ends with the bot's books equal to the venue's,
every level placed, no order placed twice, and /healthz having been non-200 exactly while degraded.

GRIDBOT_LONG_RUN_S sets the length of the surprise phase (default 120 s); the whole test is bounded.
"""
from __future__ import annotations

import asyncio
import os
import random
import time
from decimal import Decimal as D

from gridbot import strategy as st
from gridbot.status_http import StatusServer, metrics_text
from gridbot_testsupport.fake_backpack import FakeBackpack

from .conftest import PUB, books_agree, config, make_bot, start

SURPRISE_S = float(os.environ.get("GRIDBOT_LONG_RUN_S", "120"))
LEVELS = 8  # lines every 2.5 from 140 to 160
USER_SOL = D(5)


def test_long_run_with_random_venue_surprises(tmp_path):
    rng = random.Random(int(os.environ.get("GRIDBOT_LONG_RUN_SEED", "9")))
    # the user holds 5 SOL beside the grid: the venue's own (system) fills that sell SOL take it from the
    # account, and on a real account they would not be the grid's to lose (with 0 SOL they would eat the
    # grid's base and a sell level could never be placed again)
    with FakeBackpack(PUB, balances={"SOL": USER_SOL, "USDC": D(10000)}, prices={"SOL_USDC": D(150)}) as fake:
        cfg = config(fake.base_url, levels=LEVELS, qty_per_level="0.1", reconcile_interval_s=1)
        b = make_bot(tmp_path, fake, cfg)
        b.hold_base_s, b.hold_max_s = 0.05, 0.4
        b.health.grace.update(exchange=0.5, missing=2.0)
        server = StatusServer(0, b.snapshot, b.healthy, b.reasons)
        real_place = b.ex.place_limit
        expire_next = [False]
        system = {"SOL": D(0), "USDC": D(0)}  # what the venue's own (system) fills moved: not the grid's
        samples: list[tuple[float, int, bool, bool, int]] = []  # (t, healthz, reasons?, venue down, ours on venue)
        seen: dict[str, int] = {}

        async def maybe_expire(symbol, side, price, qty, client_id, post_only=True):
            if expire_next[0]:  # the price jumps through the order just before it lands: 200 Expired
                expire_next[0] = False
                seen["expired"] = seen.get("expired", 0) + 1
                fake.set_price(price + (D("0.05") if side is st.BUY else D("-0.05")))
            return await real_place(symbol, side, price, qty, client_id, post_only)

        b.ex.place_limit = maybe_expire  # type: ignore[method-assign]

        def ours_on_venue() -> int:
            return sum(1 for o in fake.open_orders() if o.client_id >> st.COUNTER_BITS >= 5)

        def sample(t0: float) -> None:
            code = server.route("GET", "/healthz")[0]
            reasons = b.reasons()
            snap = b.snapshot()
            # every channel says the same thing at the same moment
            assert snap["degraded"] == bool(reasons) == (code == 503)
            assert ('gridbot_degraded{instance="t",symbol="SOL_USDC"} 1' in metrics_text(snap)) == bool(reasons)
            assert b.status_line().startswith("DEGRADED: ") == bool(reasons)
            samples.append((time.monotonic() - t0, code, bool(reasons), fake.down is not None, ours_on_venue()))

        async def step(t0: float) -> None:
            await b._guarded_cycle()
            b.heartbeat()
            sample(t0)
            await asyncio.sleep(0.05)

        def walk() -> None:
            p = fake.account.prices["SOL_USDC"] + D(rng.randint(-40, 40)) / 100
            fake.set_price(min(max(p, D("141")), D("159")))

        async def body() -> None:
            await start(b)
            t0 = time.monotonic()
            down_until = hide_until = band_until = clock_until = 0.0
            while time.monotonic() - t0 < SURPRISE_S:
                now = time.monotonic() - t0
                if fake.down and now >= down_until:
                    fake.come_up()
                if fake.account.hide_fills and now >= hide_until:
                    fake.hide_fills(False)
                    fake.reveal()
                if band_until and now >= band_until:
                    m = fake.account.markets["SOL_USDC"]
                    m.min_mult, m.max_mult, band_until = D("0.75"), D("1.25"), 0.0
                if clock_until and now >= clock_until:
                    fake.clock_offset_ms, clock_until = 0, 0.0
                if not fake.down:
                    walk()
                r = rng.random()
                if fake.down or now < 3:
                    pass
                elif r < 0.02:
                    seen["cancel_all"] = seen.get("cancel_all", 0) + 1
                    fake.cancel_all("SOL_USDC")
                elif r < 0.06:
                    expire_next[0] = True
                elif r < 0.075 and not band_until:
                    seen["band"] = seen.get("band", 0) + 1
                    m = fake.account.markets["SOL_USDC"]
                    m.min_mult, m.max_mult, band_until = D("0.97"), D("1.03"), now + rng.uniform(2, 6)
                elif r < 0.085 and not clock_until:
                    seen["clock"] = seen.get("clock", 0) + 1
                    fake.clock_offset_ms = rng.choice([-20000, 20000])
                    clock_until = now + rng.uniform(2, 5)
                elif r < 0.095:
                    seen["outage"] = seen.get("outage", 0) + 1
                    fake.go_down(rng.choice(["503", "refuse"]))
                    down_until = now + rng.uniform(1, 4)
                elif r < 0.11 and not fake.account.hide_fills:
                    seen["late_fills"] = seen.get("late_fills", 0) + 1
                    fake.hide_fills(True)
                    hide_until = now + rng.uniform(1, 3)
                elif r < 0.12:
                    seen["system_fill"] = seen.get("system_fill", 0) + 1
                    f = fake.system_fill("SOL_USDC", rng.choice(["Bid", "Ask"]), D("0.05"))
                    sign = 1 if f.side == "Bid" else -1
                    system["SOL"] += sign * f.qty - (f.fee if f.fee_symbol == "SOL" else 0)
                    system["USDC"] += -sign * f.qty * f.price - (f.fee if f.fee_symbol == "USDC" else 0)
                await step(t0)
            # calm: every surprise undone, then the price sweeps the range once, slowly
            fake.come_up()
            fake.hide_fills(False)
            fake.reveal()
            m = fake.account.markets["SOL_USDC"]
            m.min_mult, m.max_mult = D("0.75"), D("1.25")
            fake.clock_offset_ms = 0
            expire_next[0] = False
            calm_from = len(samples)
            path = [D(150) + D(i) / 4 for i in range(0, -36, -1)] + [D(141) + D(i) / 4 for i in range(0, 73)] + \
                   [D(159) - D(i) / 4 for i in range(0, 37)]
            for p in path:
                fake.set_price(p)
                await step(t0)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                await step(t0)
                if not b.reasons() and ours_on_venue() == LEVELS and not b.need_reconcile:
                    break
            b._reconciled_at = -1e9
            await step(t0)
            await step(t0)
            return calm_from

        calm_from = asyncio.run(_closing(b, body()))

        # every kind of surprise happened
        assert set(seen) >= {"cancel_all", "expired", "band", "clock", "outage", "late_fills", "system_fill"}, seen
        # books equal to the venue's: orders, fills, coins
        books_agree(b, fake)
        assert st.missing(b.state) == [] and len(b.state.by_cid) == LEVELS == len(fake.open_orders())
        ours = {r.order_id for r in b.store.orders() if r.order_id}
        venue_fills = [f for f in fake.account.fills if f.order_id in ours]
        assert b.store.fill_count() == len(venue_fills) == b.state.fills
        sol, usdc = fake.account, fake.account
        assert sol.available["SOL"] + sol.locked["SOL"] - system["SOL"] - USER_SOL == b.state.inventory
        assert usdc.available["USDC"] + usdc.locked["USDC"] - system["USDC"] == D(10000) + b.state.quote_delta
        # no order placed twice: every client id accepted at most once by the venue
        cids = [e["accepted"] for e in fake.log if "accepted" in e]
        assert len(cids) == len(set(cids)) and len(cids) > 30
        # /healthz non-200 exactly while degraded: checked at every sample (sample()); and degraded
        # exactly when it had to be: during every outage past its grace, and never once calm again
        for i, (t, code, _deg, down, _n) in enumerate(samples):
            if down and i >= 1 and all(s[3] for s in samples[max(0, i - 12):i + 1]) and \
                    t - samples[max(0, i - 12)][0] > 0.5 + 1.0:
                assert code == 503, (t, samples[i - 12:i + 1])
        assert samples[-1][1] == 200 and samples[-1][4] == LEVELS
        calm = samples[calm_from:]
        assert any(s[1] == 503 for s in samples[:calm_from])  # the surprises did degrade it
        healthy_at = next(i for i in range(len(calm)) if all(s[1] == 200 for s in calm[i:]))
        assert calm[healthy_at][0] - calm[0][0] < 20, calm[:healthy_at + 1][-5:]  # healed soon after the storm


async def _closing(b, coro):
    try:
        return await coro
    finally:
        await b.ex.close()
