"""Will this grid trade? The start-up feasibility checks, pure: one place for ``validate`` and the bot.

A config can be valid (every field in range) and still never trade on a given market: its lines
closer than the tick, its size below the minimum once rounded to the step, the price outside the
range forever, or a budget that cannot pay for the first orders. ``problems(cfg, venue)`` lists
every such problem at once, each naming the config keys to change; ``check`` raises them as one
``ConfigError``.

Two callers, one answer:
- ``gridbot validate`` / ``start`` / ``restart`` call ``problems(cfg, paper_venue(cfg))`` (a paper
  config's venue is fully described by the config; live venues are asked at start);
- the bot (``bot/startup.py::check_feasible``), before it places a new grid (a fresh state or a
  changed grid), calls ``problems`` with what the exchange reported, and exits 78 listing them.

The budget follows the ownership rule: the grid owns ``base_investment`` (at a re-grid, what the
old grid owned) and nothing else of the account's base, so the sells it cannot seed from that are
bought at market with quote, exactly as the strategy's start does.

A live grid whose price is outside its range at start is not an error (``waiting_ok``): waiting
for the price is what a grid set below or above the market is for, and the bot reports it as not
trading (health ``range``). A fresh paper grid's price comes from the config, so there it is one;
at a paper re-grid the simulated price has moved since, and the grid waits for it as a live one does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .errors import ConfigError
from .grid import GridError, nearest_line, plan_qty, price_lines, round_up, tick_levels

if TYPE_CHECKING:
    from .records import Market
    from .models import GridConfig


@dataclass(frozen=True)
class Venue:
    """What the bot learns from the exchange before it places a grid."""

    market: "Market"
    price: Optional[Decimal]  # last price; None when unknown (a CSV replay ``validate`` cannot read)
    balances: Optional[dict[str, Decimal]] = None  # available per asset; None = not checked
    taker_fee: Decimal = Decimal("0.001")
    sources: dict[str, str] = field(default_factory=dict)  # figure -> config key it came from, for messages


PAPER_RULES = {"tick": "paper.tick_size", "step": "paper.step_size", "min_qty": "paper.min_qty"}


def paper_venue(cfg: "GridConfig") -> Venue:
    """The paper venue exactly as ``exchange.factory.open_exchange`` will build it for a fresh start."""
    from .exchange.factory import paper_market

    p, pm = cfg.paper, cfg.paper.price
    price: Optional[Decimal]
    if pm.csv:
        price = _first_csv_price(pm.csv)
    else:  # PriceStream rounds the start price to the tick (at least one tick)
        price = p.tick_size * max(1, round(float(pm.start_price) / float(p.tick_size)))
    return Venue(paper_market(cfg), price, {cfg.base_asset: p.initial_base, cfg.quote_asset: p.initial_quote},
                 p.taker_fee, paper_sources(cfg))


def paper_sources(cfg: "GridConfig") -> dict[str, str]:
    """A fresh paper venue's figures -> the config keys they come from (the messages name them)."""
    price_key = "paper.price.csv" if cfg.paper.price.csv else "paper.price.start_price"
    return {**PAPER_RULES, "price": price_key, "base": "paper.initial_base", "quote": "paper.initial_quote"}


def _first_csv_price(path: str) -> Optional[Decimal]:
    """Only an absolute path can be read here (a relative one is resolved in the state directory)."""
    if not Path(path).is_absolute():
        return None
    try:
        from .exchange.paper import read_csv_prices

        prices = read_csv_prices(path)
    except Exception:  # noqa: BLE001 - the bot reports an unreadable CSV itself; here we only skip the check
        return None
    return prices[0] if prices else None


def _key(venue: Venue, what: str, default: str) -> str:
    return venue.sources.get(what, default)


def problems(cfg: "GridConfig", venue: Venue, *, own_base: Optional[Decimal] = None,
             waiting_ok: bool = False) -> list[str]:
    """Every reason this config's grid cannot trade on ``venue``; empty when it will. ``own_base``:
    the base a re-grid carries over (default: a fresh grid's ``base_investment``, which the account
    must hold); ``waiting_ok``: a price outside the range is a waiting grid, not a problem."""
    from .models import Spacing

    out: list[str] = []
    m = venue.market
    tick_key, step_key = _key(venue, "tick", "the market's tick size"), _key(venue, "step", "the market's step size")
    min_key, price_key = _key(venue, "min_qty", "the market's minimum"), _key(venue, "price", "the market price")
    lines = price_lines(cfg.lower_price, cfg.upper_price, cfg.levels, cfg.spacing is Spacing.geometric)
    try:
        levels = tick_levels(lines, m.tick_size)
    except GridError as exc:
        return [f"{exc} (levels, lower_price/upper_price against {tick_key} {m.tick_size})"]
    price = venue.price
    in_range = price is not None and levels.buy[0] <= price <= levels.sell[-1]
    if price is not None and not in_range and not waiting_ok:
        out.append(f"the price {price} ({price_key}) is outside the grid {levels.buy[0]}..{levels.sell[-1]}: "
                   f"the bot would wait forever without placing an order; move lower_price/upper_price or the price")
    # sized as the bot sizes it (build_params: the last price); an out-of-range error is reported already
    sizing_price = price if price is not None and (in_range or waiting_ok) else (levels.buy[0] + levels.sell[-1]) / 2
    try:
        qty = plan_qty(cfg.qty_per_level, cfg.investment, levels, sizing_price, m.step_size, m.min_qty,
                       cfg.fee_rate)
    except GridError as exc:
        sized_by = "qty_per_level" if cfg.qty_per_level is not None else "investment"
        out.append(f"{exc} ({sized_by} against {step_key} {m.step_size} and {min_key} {m.min_qty})")
        return out
    if venue.balances is not None:
        held = venue.balances.get(m.base, Decimal(0))
        if own_base is None and cfg.base_investment > held:
            where = f"in {venue.sources['base']}" if "base" in venue.sources else "available on the account"
            out.append(f"base_investment {cfg.base_investment} {m.base} is more than the {held} {m.base} {where}")
        if in_range:
            assert price is not None
            own = min(cfg.base_investment, held) if own_base is None else own_base
            out += _budget(cfg, venue, levels.buy, levels.sell, qty, price, own)
    return out


def _budget(cfg: "GridConfig", venue: Venue, buy: tuple[Decimal, ...], sell: tuple[Decimal, ...], qty: Decimal,
            price: Decimal, have_base: Decimal) -> list[str]:
    """The first orders the strategy sends (see strategy._start/_place_grid) must be affordable from
    the quote on hand and the base the grid owns (``have_base``)."""
    m, bal = venue.market, venue.balances or {}
    mid = [(b + s) / 2 for b, s in zip(buy, sell)]
    empty = nearest_line(mid, price)
    n_buys, n_sells = empty, len(buy) - 1 - empty
    have_quote = bal.get(m.quote, Decimal(0))
    need_base = n_sells * qty
    market_qty = Decimal(0)
    if have_base < need_base:
        market_qty = max(round_up((need_base - have_base) / (1 - venue.taker_fee), m.step_size), m.min_qty)
    buys_cost = qty * sum(buy[:n_buys], Decimal(0))
    need_quote = buys_cost + market_qty * price
    if need_quote <= have_quote:
        return []
    parts = [f"{n_buys} buy(s) of {qty} {m.base} below {price} cost {buys_cost.normalize():f} {m.quote}"]
    if market_qty:
        parts.append(f"buying {market_qty} {m.base} at market for the {n_sells} sell(s) costs "
                     f"{(market_qty * price).normalize():f} {m.quote}")
    quote_key = _key(venue, "quote", f"the {m.quote} balance")
    return [f"the grid needs {need_quote.normalize():f} {m.quote} at start ({'; '.join(parts)}) but {quote_key} is "
            f"{have_quote}: raise it, grant the grid {m.base} (base_investment), or use a smaller qty_per_level/investment"]


def check(cfg: "GridConfig", venue: Venue) -> None:
    """Raise ConfigError listing every problem at once (the bot exits 78 on it)."""
    found = problems(cfg, venue)
    if found:
        raise ConfigError("; ".join(found))
