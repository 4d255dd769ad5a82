"""Replay benchmark of the strategy core: price updates per second on a 50-level grid.

Two figures: ticks alone (the hot path), and a full replay where every tick that crosses the
nearest resting buy/sell (an O(1) check via ``best_prices``) also feeds that fill back, so counter-
orders are created as in a live run. Prints figures; asserts nothing.
"""
from __future__ import annotations

import time
from decimal import Decimal

from gridbot import strategy as st
from gridbot.exchange.paper import PriceStream
from gridbot.grid import price_lines, tick_levels

N_TICKS = 1_000_000
ZERO = Decimal(0)


def make_state() -> st.GridState:
    levels = tick_levels(price_lines(Decimal(140), Decimal(160), 50), Decimal("0.01"))
    p = st.Params(levels.buy, levels.sell, Decimal("1"), Decimal("0.01"), Decimal("0.01"), "SOL", "USDC",
                  stop_loss=Decimal(100), take_profit=Decimal(200))
    s = st.init(p, Decimal(1000))
    s, intents = st.step(s, st.Tick(Decimal("150.00")))
    assert len(intents) == 50, intents
    return s


def replay(ticks: list[st.Tick], with_fills: bool) -> tuple[float, float, int]:
    """Returns (CPU seconds, wall seconds, fills). CPU time is the fair figure on a shared machine."""
    s = make_state()
    step, Filled = st.step, st.Filled
    buy, sell, gaps = s.p.buy, s.p.sell, s.gaps
    fills = 0
    c0, t0 = time.process_time(), time.perf_counter()
    if not with_fills:
        for ev in ticks:
            step(s, ev)
    else:
        for ev in ticks:
            step(s, ev)
            price = ev.price
            while s.best_buy >= 0 and price <= buy[s.best_buy]:  # the nearest resting buy was crossed
                g = s.best_buy
                gap = gaps[g]
                fills += 1
                step(s, Filled(gap.cid, gap.qty - gap.filled, buy[g], ZERO, "SOL", f"t{fills}"))
            while s.best_sell >= 0 and price >= sell[s.best_sell + 1]:
                g = s.best_sell
                gap = gaps[g]
                fills += 1
                step(s, Filled(gap.cid, gap.qty - gap.filled, sell[g + 1], ZERO, "USDC", f"t{fills}"))
        assert s.phase == st.RUNNING, s.phase
    return time.process_time() - c0, time.perf_counter() - t0, fills


def main() -> None:
    stream = PriceStream(Decimal(150), Decimal("0.01"), seed=5, volatility=0.0001, jump_probability=0.0001,
                         jump_size=0.005)
    path = [stream.next() for _ in range(N_TICKS)]
    lo, hi = min(path), max(path)
    ticks = [st.Tick(p) for p in path]
    print(f"strategy core, 50-level grid, {N_TICKS:,} ticks (price {lo}..{hi})")
    for label, with_fills in (("ticks only", False), ("replay with fills", True)):
        runs = [replay(ticks, with_fills) for _ in range(3)]
        cpu, wall, fills = min(r[0] for r in runs), min(r[1] for r in runs), runs[0][2]
        extra = f", {fills:,} fills -> counter-orders" if with_fills else ""
        print(f"  {label + ':':19}{N_TICKS / cpu:>12,.0f} updates per CPU-second ({cpu * 1e9 / N_TICKS:.0f} ns each;"
              f" best wall {N_TICKS / wall:,.0f}/s{extra})")


if __name__ == "__main__":
    main()
