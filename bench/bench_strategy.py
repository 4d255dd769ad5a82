"""Replay benchmark of the strategy core: price updates per second on a 50-level grid.

Two figures: ticks alone (the hot path), and a full replay where every tick that crosses the
nearest resting buy/sell (an O(1) check via ``best_prices``) also feeds that fill back, so counter-
orders are created as in a live run. Prints figures; asserts nothing.
"""
from __future__ import annotations

import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gridbot import strategy as st  # noqa: E402
from gridbot.exchange.paper import PriceStream  # noqa: E402
from gridbot.grid import price_lines, tick_levels  # noqa: E402

N_TICKS = 1_000_000


def make_state() -> st.GridState:
    levels = tick_levels(price_lines(Decimal(140), Decimal(160), 50), Decimal("0.01"))
    p = st.Params(levels.buy, levels.sell, Decimal("1"), Decimal("0.01"), Decimal("0.01"), "SOL", "USDC",
                  stop_loss=Decimal(100), take_profit=Decimal(200))
    s = st.init(p, Decimal(1000))
    s, intents = st.step(s, st.Tick(Decimal("150.00")))
    assert len(intents) == 50, intents
    return s


def replay(ticks: list[st.Tick], with_fills: bool) -> tuple[float, int]:
    s = make_state()
    step, Tick, Filled = st.step, st.Tick, st.Filled
    fills = 0
    t0 = time.perf_counter()
    if not with_fills:
        for ev in ticks:
            step(s, ev)
        return time.perf_counter() - t0, 0
    for ev in ticks:
        step(s, ev)
        price = ev.price
        while s.best_buy >= 0 and price <= s.p.buy[s.best_buy]:
            gap = s.gaps[s.best_buy]
            fills += 1
            step(s, Filled(gap.cid, gap.qty - gap.filled, s.p.buy[s.best_buy], Decimal(0), "SOL", f"t{fills}"))
        while s.best_sell >= 0 and price >= s.p.sell[s.best_sell + 1]:
            gap = s.gaps[s.best_sell]
            fills += 1
            step(s, Filled(gap.cid, gap.qty - gap.filled, s.p.sell[s.best_sell + 1], Decimal(0), "USDC",
                           f"t{fills}"))
    assert s.phase == st.RUNNING, s.phase
    return time.perf_counter() - t0, fills


def main() -> None:
    stream = PriceStream(Decimal(150), Decimal("0.01"), seed=5, volatility=0.0001, jump_probability=0.0001,
                         jump_size=0.005)
    path = [stream.next() for _ in range(N_TICKS)]
    lo, hi = min(path), max(path)
    ticks = [st.Tick(p) for p in path]
    dt, _ = replay(ticks, with_fills=False)
    print(f"strategy core, 50-level grid, {N_TICKS:,} ticks (price {lo}..{hi})")
    print(f"  ticks only:        {N_TICKS / dt:>12,.0f} updates/s  ({dt * 1e9 / N_TICKS:.0f} ns each)")
    dt, fills = replay(ticks, with_fills=True)
    print(f"  replay with fills: {N_TICKS / dt:>12,.0f} updates/s  ({fills:,} fills, counter-orders placed)")


if __name__ == "__main__":
    main()
