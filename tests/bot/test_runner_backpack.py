"""The real runner (``python -m gridbot.runner``) trading through the Backpack adapter against the fake
Backpack server: the same strategy and store as paper."""
from __future__ import annotations

import subprocess
import sys
from decimal import Decimal as D

import pytest

from gridbot_testsupport import wait_until
from gridbot_testsupport.fake_backpack import FakeBackpack

from .conftest import PUB, SECRET, keys, posts, reaped, runner_env, sigterm


@pytest.fixture
def fake():
    """The account of the adapter's own tests (tests/unit/test_backpack.py): the bot holds SOL already."""
    with FakeBackpack(PUB, prices={"SOL_USDC": D(150)}, balances={"SOL": D(10), "USDC": D(10000), "USDT": D(10000)}) as f:
        yield f


def test_runner_trades_through_the_adapter(fake, tmp_path):
    env = runner_env(tmp_path, fake.base_url, keys())
    proc = subprocess.Popen([sys.executable, "-m", "gridbot.runner", "bp1"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with reaped(proc):
        assert wait_until(lambda: len(fake.open_orders()) >= 4), "grid was not placed"
        first = {o.client_id: o for o in fake.open_orders()}
        assert {o.side for o in first.values()} == {"Bid", "Ask"}
        limits = [p for p in posts(fake) if p["orderType"] == "Limit"]
        assert limits and all(p["postOnly"] is True for p in limits)  # the only market order: buying the sells' base
        best_buy = max(o.price for o in first.values() if o.side == "Bid")
        fills = fake.set_price(best_buy)
        assert len(fills) == 1
        # the runner sees the fill through fills_since and places the counter-order one level up
        assert wait_until(lambda: any(o.client_id not in first and o.side == "Ask"
                                 for o in fake.open_orders())), "no counter-order after the fill"
        out = sigterm(proc, timeout=20)
    assert proc.returncode == 0, out
    assert fake.open_orders() == [], out  # on_stop=cancel went through the adapter too
    assert SECRET not in out and PUB not in out


def test_runner_without_credentials_refuses_to_start(fake, tmp_path):
    env = runner_env(tmp_path, fake.base_url, b"none")  # the SetCredential=backpack:none fallback
    res = subprocess.run([sys.executable, "-m", "gridbot.runner", "bp1"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 78
    assert "instance bp1 trades on backpack but has no credentials: run `sudo gridbot credentials set bp1`" in (
        res.stdout + res.stderr)
    assert [e for e in fake.log if e.get("authenticated")] == []
