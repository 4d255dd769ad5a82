"""What a (re)start will do to a running grid whose config changed. Pure: values in, lines out.

The bot re-grids on start when the grid fields of its config differ from the ones its state was
built with (runner.open_state): it cancels the old grid's open orders, places the new grid, and
first buys at market the base its new sells need. ``plan`` says that in numbers before it happens,
from the saved strategy snapshot (open orders, inventory, last price) and the new config.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Optional

from .grid import GridError, nearest_line, plan_qty, price_lines, round_up, tick_levels
from .models import GRID_FIELDS, grid_fingerprint

if TYPE_CHECKING:
    from .models import GridConfig



@dataclass(frozen=True)
class Plan:
    """The re-grid a start will do; ``lines`` say it for a human."""

    name: str
    live: bool
    changed: dict[str, tuple[Any, Any]]
    lines: list[str] = field(default_factory=list)


fingerprint = grid_fingerprint  # the runner's own: the preview compares exactly what the bot compares


def _tick_of(prices: list[str]) -> Decimal:
    """The finest decimal step among the old grid's exchange prices: its tick, or a multiple of it."""
    exp = min((Decimal(p).as_tuple().exponent for p in prices), default=-2)
    return Decimal(1).scaleb(int(exp))  # type: ignore[arg-type]


def plan(name: str, cfg: "GridConfig", saved_grid: Optional[dict[str, Any]], snapshot: Optional[dict[str, Any]],
         taker_fee: Decimal = Decimal("0.001")) -> Optional[Plan]:
    """None when the start keeps the grid (same grid fields) or there is no grid yet (fresh start)."""
    if saved_grid is None or snapshot is None:
        return None
    new = fingerprint(cfg)
    changed = {k: (saved_grid.get(k), new.get(k)) for k in GRID_FIELDS if saved_grid.get(k) != new.get(k)}
    if not changed:
        return None
    from .strategy import GridState

    state = GridState.from_dict(snapshot)
    base, quote = cfg.base_asset, cfg.quote_asset
    what = "; ".join(f"{k} {old} -> {nw}" for k, (old, nw) in changed.items())
    lines = [f"{name}: the grid changed ({what}); on start the bot will:"]
    if state.by_cid:  # none after a stop with on_stop=cancel
        lines.append(f"  cancel the {len(state.by_cid)} open order(s) of the old grid")
    price = state.price
    if cfg.exchange == "paper":
        tick, step, min_qty = cfg.paper.tick_size, cfg.paper.step_size, cfg.paper.min_qty
    else:
        tick, step, min_qty = (_tick_of(snapshot["params"]["buy"] + snapshot["params"]["sell"]),
                               state.p.step, state.p.min_qty)
    try:
        levels = tick_levels(price_lines(cfg.lower_price, cfg.upper_price, cfg.levels,
                                         cfg.spacing.value == "geometric"), tick)
        at = price if price is not None else (levels.buy[0] + levels.sell[-1]) / 2
        qty = plan_qty(cfg.qty_per_level, cfg.investment, levels, at, step, min_qty, cfg.fee_rate)
    except GridError as exc:
        lines.append(f"  then refuse to start: {exc}")
        return Plan(name, cfg.exchange != "paper", changed, lines)
    lines.append(f"  place a new grid {levels.buy[0]}..{levels.sell[-1]}, {cfg.levels} {cfg.spacing.value} "
                 f"intervals, {qty} {base} per level")
    if price is None or not levels.buy[0] <= price <= levels.sell[-1]:
        lines.append(f"  wait for the price ({price if price is not None else 'unknown'}) to enter the range "
                     f"before placing it")
        return Plan(name, cfg.exchange != "paper", changed, lines)
    mid = [(b + s) / 2 for b, s in zip(levels.buy, levels.sell)]
    empty = nearest_line(mid, price)
    sells = cfg.levels - empty
    need, have = sells * qty, state.inventory
    lines[-1] += f" ({empty} buys below and {sells} sells above {price} {quote})"
    if have < need:
        buy = max(round_up((need - have) / (1 - taker_fee), step), min_qty)
        lines.append(f"  buy {buy} {base} at market (about {(buy * price).normalize():f} {quote}) for the sells "
                     f"(it holds {have} {base})")
    return Plan(name, cfg.exchange != "paper", changed, lines)
