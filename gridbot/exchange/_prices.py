"""The paper venue's prices: a seeded random walk, or a replay of a CSV file.

``PriceStream`` is counter-based (its state is ``(n, price)``), so a restart continues the same
path from two saved numbers. ``read_csv_prices`` reads one price per line. No venue logic here.
"""
from __future__ import annotations

import csv
import math
from decimal import Decimal
from pathlib import Path
from typing import Iterator, Optional

_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64: a counter-based generator, so the stream's state is just (seed, n)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _uniform(seed: int, n: int, k: int) -> float:
    return ((_mix((seed * 0x100000001B3 + n * 4 + k) & _MASK) >> 11) + 0.5) / float(1 << 53)


class PriceStream:
    """Seeded log random walk with occasional jumps, rounded to the tick; or a CSV replay.

    State is ``(n, price)``; the n-th move depends only on (seed, n), so persisting two numbers is
    enough for a restart to continue the same path.
    """

    def __init__(self, start: Decimal, tick: Decimal, seed: int = 1, volatility: float = 0.0008,
                 jump_probability: float = 0.002, jump_size: float = 0.01,
                 prices: Optional[list[Decimal]] = None, n: int = 0, price: Optional[Decimal] = None) -> None:
        self.tick, self.seed = tick, seed
        self.vol, self.jump_p, self.jump = volatility, jump_probability, jump_size
        self.prices = prices
        self.n = n
        self.price = price if price is not None else (prices[0] if prices else self._round(float(start)))

    def _round(self, x: float) -> Decimal:
        ticks = max(1, round(x / float(self.tick)))
        return self.tick * ticks

    def next(self) -> Decimal:
        self.n += 1
        if self.prices:
            self.price = self.prices[self.n % len(self.prices)]
            return self.price
        u1, u2, u3, u4 = (_uniform(self.seed, self.n, k) for k in range(4))
        z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2 * math.pi * u2)
        r = self.vol * z
        if u3 < self.jump_p:
            r += self.jump * (1 if u4 < 0.5 else -1)
        self.price = self._round(float(self.price) * math.exp(r))
        return self.price

    def __iter__(self) -> Iterator[Decimal]:
        while True:
            yield self.next()


def read_csv_prices(path: str | Path) -> list[Decimal]:
    """One price per line (first column); header and blank lines are skipped."""
    out = []
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if not row or not row[0].strip():
                continue
            try:
                p = Decimal(row[0].strip())
            except ArithmeticError:
                continue
            if p.is_finite() and p > 0:
                out.append(p)
    if not out:
        raise ValueError(f"{path}: no prices found")
    return out
