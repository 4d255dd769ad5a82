"""Pick the venue for a config. Imports are lazy so a paper bot never loads httpx or cryptography."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Optional

from ..models import GridConfig
from .base import Exchange, Market


def paper_market(cfg: GridConfig) -> Market:
    p = cfg.paper
    return Market(cfg.symbol, cfg.base_asset, cfg.quote_asset, p.tick_size, p.step_size, p.min_qty)


def open_exchange(cfg: GridConfig, state_dir: Path, *, saved: Optional[dict[str, Any]] = None,
                  save: Optional[Callable[[dict[str, Any]], None]] = None,
                  liquidity_per_tick: Optional[Decimal] = None, latency_s: float = 0.0) -> Exchange:
    """"paper" -> PaperExchange (restored from ``saved``, persisted via ``save``); "backpack" -> live.

    ``state_dir`` resolves a relative ``paper.price.csv`` path, so an instance can ship its own replay.
    """
    if cfg.exchange == "paper":
        from .paper import PaperExchange, PriceStream, read_csv_prices

        p, pm = cfg.paper, cfg.paper.price
        prices = None
        if pm.csv:
            path = Path(pm.csv)
            prices = read_csv_prices(path if path.is_absolute() else Path(state_dir) / path)
        stream = PriceStream(pm.start_price, p.tick_size, seed=p.seed, volatility=pm.volatility,
                             jump_probability=pm.jump_probability, jump_size=pm.jump_size, prices=prices)
        balances = {cfg.base_asset: p.initial_base, cfg.quote_asset: p.initial_quote}
        return PaperExchange.create(paper_market(cfg), balances, cfg.fee_rate, p.taker_fee, stream, pm.interval_s,
                                    saved=saved, save=save,
                                    liquidity_per_tick=liquidity_per_tick or p.liquidity_per_tick,
                                    latency_s=latency_s)
    if cfg.exchange == "backpack":
        from .backpack import BackpackExchange
        from .backpack_keys import load_keys

        key, secret = load_keys()
        return BackpackExchange(cfg.backpack, cfg.symbol, key, secret)
    raise ValueError(f"unknown exchange {cfg.exchange!r}")
