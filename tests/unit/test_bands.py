"""gridbot/bands.py through `gridbot validate`: a live grid against its market today (the bot's start-up
checks are errors; a range wider than the price band, a price outside the range, a book that is not
Open are warnings), a venue out of reach, --offline; against the fake Backpack server."""
from __future__ import annotations

import base64
import sys
from decimal import Decimal as D
from pathlib import Path

import pytest

from gridbot.exchange import _sign
from gridbot_testsupport.fake_backpack import FakeBackpack

PUB = _sign.public_key_b64(_sign.load_private_key(base64.b64encode(bytes(range(32))).decode()))


@pytest.fixture
def fake():
    with FakeBackpack(PUB, balances={"SOL": D(0), "USDC": D(10000)}, prices={"SOL_USDC": D(150)}) as f:
        yield f


def _validate(cfg_dir: Path, *args: str):
    import os
    import subprocess

    env = {**os.environ, "GRIDBOT_CONFIG_DIR": str(cfg_dir)}
    env.pop("CONFIGURATION_DIRECTORY", None)
    return subprocess.run([sys.executable, "-m", "gridbot", "validate", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_validate_warns_when_a_live_range_is_wider_than_todays_band(fake, tmp_path):
    import json
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    live = {"exchange": "backpack", "symbol": "SOL_USDC", "levels": 4, "qty_per_level": "0.1",
            "backpack": {"base_url": fake.base_url}}
    (tmp_path / "wide.json").write_text(json.dumps({**live, "lower_price": "100", "upper_price": "200"}))
    (tmp_path / "fits.json").write_text(json.dumps({**live, "lower_price": "120", "upper_price": "180"}))
    (tmp_path / "away.json").write_text(json.dumps({**live, "lower_price": "120", "upper_price": "180",
                                                    "backpack": {"base_url": f"http://127.0.0.1:{dead}"}}))
    r = _validate(tmp_path, "wide", "fits", "away", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    (w,) = data["wide"]["warnings"]
    assert "wider than SOL_USDC's price band at today's price 150 (0.75..1.25 x: 112.5..187.5)" in w
    assert "lower_price 100 is below 112.5" in w and "upper_price 200 is above 187.5" in w
    assert data["fits"] == {"valid": True, "error": None}
    (w,) = data["away"]["warnings"]
    assert w.startswith("could not check SOL_USDC's market rules") and "--offline" in w
    fake.account.markets["SOL_USDC"].state = "PostOnly"
    r = _validate(tmp_path, "fits")
    assert r.returncode == 0 and "order book is PostOnly today: limit orders only" in r.stderr
    assert not [e for e in fake.log if e.get("authenticated")]  # public data only, no keys
    n = len(fake.log)
    r = _validate(tmp_path, "wide", "--offline")
    assert r.returncode == 0 and "warning" not in r.stderr and len(fake.log) == n


def test_validate_refuses_a_live_grid_the_market_rules_refuse_as_the_bot_would(fake, tmp_path):
    """The public market rules of today (tick, step, minimum size) make validate fail with the
    problems the bot's start-up would name; a price outside the range is only a warning."""
    import json

    live = {"exchange": "backpack", "symbol": "SOL_USDC", "levels": 4, "backpack": {"base_url": fake.base_url}}
    (tmp_path / "tiny.json").write_text(json.dumps({**live, "lower_price": "120", "upper_price": "180",
                                                    "qty_per_level": "0.001"}))
    (tmp_path / "below.json").write_text(json.dumps({**live, "lower_price": "60", "upper_price": "100",
                                                     "qty_per_level": "0.1"}))
    r = _validate(tmp_path, "tiny", "below", "--json")
    assert r.returncode != 0
    data = json.loads(r.stdout)
    err = data["tiny"]["error"]
    assert data["tiny"]["valid"] is False
    assert "qty per level 0.001 rounds to 0.00, below the market minimum 0.01" in err and "qty_per_level" in err
    assert err.startswith(str(tmp_path / "tiny.json") + ": ")
    assert data["below"]["valid"] is True
    w = data["below"]["warnings"]
    assert "SOL_USDC's price today, 150, is outside the range 60..100: the grid waits, placing nothing" in w[0]
    assert "wider than SOL_USDC's price band" in w[1]
    r = _validate(tmp_path, "tiny", "--offline")
    assert r.returncode == 0  # offline: what the config alone says
