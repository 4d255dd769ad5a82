"""Every shipped example config validates, and the paper ones can actually build their grid."""
from decimal import Decimal
from pathlib import Path

import pytest

from gridbot.config import load_file, parse_config
from gridbot.exchange.factory import paper_market
from gridbot.models import SCHEMA_URL
from gridbot.runner import build_params

CONFIG = Path(__file__).resolve().parents[2] / "config"
EXAMPLES = sorted(CONFIG.glob("*.json")) + sorted(CONFIG.glob("*.json.example"))


def test_there_are_examples():
    names = {p.name for p in EXAMPLES}
    assert {"bp_sol_01.json", "bp_eth_02.json", "bp_sol_live.json.example"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates(path):
    cfg = parse_config(path.read_bytes(), str(path)) if path.suffix == ".example" else load_file(path)
    assert cfg.schema_ref == SCHEMA_URL
    if path.suffix == ".example":
        assert cfg.exchange == "backpack"
        return
    assert cfg.exchange == "paper"
    start = cfg.paper.price.start_price
    assert cfg.lower_price < start < cfg.upper_price  # the grid starts in range
    p = build_params(cfg, paper_market(cfg), start, cfg.paper.taker_fee)
    assert len(p.buy) == cfg.levels + 1 and p.qty >= cfg.paper.min_qty
    # the paper account can fund the grid: buys below plus the base for the sells above
    below = sum((b for b in p.buy if b < start), Decimal(0))
    above = sum(1 for s in p.sell if s > start)
    assert p.qty * (below + above * start) <= cfg.paper.initial_quote + cfg.paper.initial_base * start
