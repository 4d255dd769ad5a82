"""gridbot/exchange/factory.py: the venue a config builds."""
from __future__ import annotations

import json


def test_liquidity_per_tick_in_config_gives_partial_fills(tmp_path):
    """paper.liquidity_per_tick reaches the venue: an order bigger than it fills in parts."""
    from decimal import Decimal

    from gridbot.config import parse_config
    from gridbot.exchange.base import Side
    from gridbot.exchange.factory import open_exchange

    cfg = parse_config(json.dumps({"symbol": "SOL_USDC", "lower_price": 100, "upper_price": 200, "levels": 10,
                                   "qty_per_level": 1, "paper": {"liquidity_per_tick": 0.25,
                                                                 "price": {"start_price": 150}}}), "t.json")
    ex = open_exchange(cfg, tmp_path)
    venue = ex.venue
    venue.place_limit(Side.buy, Decimal("149"), Decimal("1"), client_id=1)
    fills = venue.set_price(Decimal("148"))
    assert fills and sum(f.qty for f in fills) == Decimal("0.25")
    assert venue.get_order(1).filled_qty == Decimal("0.25")
