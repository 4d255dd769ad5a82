"""Does a live grid fit the venue's rules today? Public market data only: no keys, a short timeout.

Backpack refuses a limit price outside ``[minMultiplier, maxMultiplier] x the last price``
(``filters.price`` of ``GET /api/v1/markets``). A grid wider than that band is not wrong (the band
follows the price, and the bot keeps such levels waiting instead of burning rejections), but its
outer levels cannot rest today: ``gridbot validate`` says so. It also says when the order book is
not ``Open``. Used by the CLI, which only prints; ``--offline`` skips the look-up.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal, InvalidOperation
from typing import Any

from .models import GridConfig

TIMEOUT_S = 3.0


def _get(base: str, path: str, timeout: float) -> Any:
    req = urllib.request.Request(base.rstrip("/") + path, headers={"User-Agent": "gridbot", "Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (the configured https/http URL)
        return json.loads(resp.read())


def band_warnings(cfg: GridConfig, timeout: float = TIMEOUT_S) -> list[str]:
    """Warnings about ``cfg`` against the venue's market today (empty: it fits). Paper: none.
    A failed look-up is itself one warning, never an error: the config is still valid."""
    if cfg.exchange != "backpack":
        return []
    base = cfg.backpack.base_url
    try:
        markets = _get(base, "/api/v1/markets", timeout)
        market = next((m for m in markets if m.get("symbol") == cfg.symbol), None)
        if market is None:
            return [f"{cfg.symbol} is not listed on {base}"]
        ticker = _get(base, "/api/v1/ticker?" + urllib.parse.urlencode({"symbol": cfg.symbol}), timeout)
        last = Decimal(str(ticker["lastPrice"]))
        price = market.get("filters", {}).get("price", {})
        lo_m, hi_m = price.get("minMultiplier"), price.get("maxMultiplier")
        state = str(market.get("orderBookState") or "Open")
    except (OSError, ValueError, KeyError, TypeError, InvalidOperation, urllib.error.URLError) as exc:
        detail = " ".join(str(getattr(exc, "reason", exc)).split())[:120]
        return [f"could not check {cfg.symbol}'s price band on {base} ({type(exc).__name__}: {detail}); "
                f"--offline skips this check"]
    out = []
    if lo_m not in (None, "") and hi_m not in (None, ""):
        lo, hi = last * Decimal(str(lo_m)), last * Decimal(str(hi_m))
        outside = []
        if cfg.lower_price < lo:
            outside.append(f"lower_price {cfg.lower_price} is below {_r(lo)}")
        if cfg.upper_price > hi:
            outside.append(f"upper_price {cfg.upper_price} is above {_r(hi)}")
        if outside:
            out.append(f"range {cfg.lower_price}..{cfg.upper_price} is wider than {cfg.symbol}'s price band at today's "
                       f"price {last} ({lo_m}..{hi_m} x: {_r(lo)}..{_r(hi)}): " + ", ".join(outside)
                       + "; those levels wait until the price comes near, and the bot reports them missing")
    if state != "Open":
        out.append(f"{cfg.symbol}'s order book is {state} today: "
                   + ("limit orders only" if state in ("PostOnly", "LimitOnly") else "no new orders are accepted"))
    return out


def _r(x: Decimal) -> str:
    return str(x.quantize(Decimal("0.01")).normalize())
