"""Config + market rules -> the strategy's parameters and limits (pure; no I/O).

Apart from the Bot because it is pure: the tests of the example configs and of feasibility compute
exactly the grid the bot would run without opening a store or an exchange.
"""
from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Optional

from .. import strategy as st
from ..grid import plan_qty, price_lines, tick_levels
from ..models import GridConfig, OnTrigger, Spacing

if TYPE_CHECKING:
    from ..exchange.base import Market


def build_params(cfg: GridConfig, market: "Market", price: Decimal, taker_fee: Decimal) -> st.Params:
    """Config + market rules -> rounded strategy parameters; GridError if the grid cannot exist."""
    lines = price_lines(cfg.lower_price, cfg.upper_price, cfg.levels, cfg.spacing is Spacing.geometric)
    levels = tick_levels(lines, market.tick_size)
    qty = plan_qty(cfg.qty_per_level, cfg.investment, levels, price, market.step_size, market.min_qty, cfg.fee_rate)
    return st.Params(levels.buy, levels.sell, qty, market.step_size, market.min_qty, market.base, market.quote,
                     market_fee=taker_fee, stop_loss=cfg.stop_loss, take_profit=cfg.take_profit,
                     sell_on_trigger=cfg.on_trigger is OnTrigger.sell)


def limits(cfg: GridConfig) -> st.SetLimits:
    """The config's stop-loss/take-profit as the strategy event that sets them (every start and reload)."""
    return st.SetLimits(cfg.stop_loss, cfg.take_profit, cfg.on_trigger is OnTrigger.sell)


def thresholds_fit(p: st.Params, stop_loss: Optional[Decimal], take_profit: Optional[Decimal]) -> list[str]:
    """Why these thresholds do not fit the grid that is running (empty: they do). A config is validated
    against its own range; a reload must not apply thresholds meant for a range not yet running."""
    why = []
    if stop_loss is not None and stop_loss >= p.buy[0]:
        why.append(f"stop_loss {stop_loss} is not below the running grid's lowest line {p.buy[0]}")
    if take_profit is not None and take_profit <= p.sell[-1]:
        why.append(f"take_profit {take_profit} is not above the running grid's highest line {p.sell[-1]}")
    return why
