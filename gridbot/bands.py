"""Will a live grid trade on the venue today? Public market data only: no keys, a short timeout.

``live_check`` reads the market and its last price and runs the bot's own start-up checks on them
(``feasibility.problems``: tick, step and minimum size against the grid). Those are **errors**: the
bot would refuse to start (exit 78) with the same words. The rest are **warnings**:

- Backpack refuses a limit price outside ``[minMultiplier, maxMultiplier] x the last price``
  (``filters.price`` of ``GET /api/v1/markets``). A grid wider than that band is not wrong (the band
  follows the price, and the bot keeps such levels waiting instead of burning rejections), but its
  outer levels cannot rest today.
- The order book is not ``Open``.
- The price is outside the range: a live grid then waits, which is what a grid set away from the
  market is for (the bot reports it as not trading).

Balances need the keys, which only the sandboxed bot holds: the bot checks its budget at start.
A failed look-up is one warning, never an error. Used by the CLI, which only prints; ``--offline``
skips the look-up.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from .models import GridConfig

if TYPE_CHECKING:
    from .records import Market

TIMEOUT_S = 3.0


def _get(base: str, path: str, timeout: float) -> Any:
    req = urllib.request.Request(base.rstrip("/") + path, headers={"User-Agent": "gridbot", "Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (the configured https/http URL)
        return json.loads(resp.read())


def live_check(cfg: GridConfig, timeout: float = TIMEOUT_S) -> tuple[list[str], list[str]]:
    """(errors, warnings) about ``cfg`` against the venue's market today. Paper: none."""
    if cfg.exchange != "backpack":
        return [], []
    from . import feasibility
    from .exchange._backpack_wire import parse_market

    base = cfg.backpack.base_url
    try:
        markets = _get(base, "/api/v1/markets", timeout)
        found = next((m for m in markets if m.get("symbol") == cfg.symbol), None)
        if found is None:
            return [f"{cfg.symbol} is not listed on {base}"], []
        ticker = _get(base, "/api/v1/ticker?" + urllib.parse.urlencode({"symbol": cfg.symbol}), timeout)
        last = Decimal(str(ticker["lastPrice"]))
        market = parse_market(found)
    except (OSError, ValueError, KeyError, TypeError, InvalidOperation, urllib.error.URLError) as exc:
        detail = " ".join(str(getattr(exc, "reason", exc)).split())[:120]
        return [], [f"could not check {cfg.symbol}'s market rules on {base} ({type(exc).__name__}: {detail}); "
                    f"--offline skips this check"]
    errors = feasibility.problems(cfg, feasibility.Venue(market, last), waiting_ok=True)
    return errors, _warnings(cfg, market, last)


def _warnings(cfg: GridConfig, market: "Market", last: Decimal) -> list[str]:
    out = []
    if not cfg.lower_price <= last <= cfg.upper_price:
        out.append(f"{cfg.symbol}'s price today, {last}, is outside the range {cfg.lower_price}..{cfg.upper_price}: "
                   f"the grid waits, placing nothing, until the price comes into it (reported as not trading)")
    if market.price_band is not None:
        lo_m, hi_m = market.price_band
        lo, hi = last * lo_m, last * hi_m
        outside = []
        if cfg.lower_price < lo:
            outside.append(f"lower_price {cfg.lower_price} is below {_r(lo)}")
        if cfg.upper_price > hi:
            outside.append(f"upper_price {cfg.upper_price} is above {_r(hi)}")
        if outside:
            out.append(f"range {cfg.lower_price}..{cfg.upper_price} is wider than {cfg.symbol}'s price band at today's "
                       f"price {last} ({lo_m.normalize()}..{hi_m.normalize()} x: {_r(lo)}..{_r(hi)}): "
                       + ", ".join(outside) + "; those levels wait until the price comes near, and the bot reports "
                       "them missing")
    if market.state != "Open":
        out.append(f"{cfg.symbol}'s order book is {market.state} today: "
                   + ("limit orders only" if market.state in ("PostOnly", "LimitOnly") else "no new orders are accepted"))
    return out


def _r(x: Decimal) -> str:
    return str(x.quantize(Decimal("0.01")).normalize())
