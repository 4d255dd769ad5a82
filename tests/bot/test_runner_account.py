"""The account rules as the bot process meets them at start (gridbot/account.py): a symbol another
instance holds, and a lost state, each refused with exit 78 and one line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from gridbot import account
from gridbot.account import claim
from gridbot.models import GridConfig

from .conftest import ROOT, keys


LIVE = {"exchange": "backpack", "symbol": "SOL_USDC", "lower_price": "100", "upper_price": "200", "levels": 10,
        "qty_per_level": "0.1", "backpack": {"account": "main", "poll_interval_s": 2.0, "base_url": "http://127.0.0.1:9"}}


def live() -> GridConfig:
    return GridConfig.model_validate(LIVE)


@pytest.fixture
def root(tmp_path):
    return tmp_path / "accounts"


def _run_bot(tmp_path, name, root):
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    (conf / f"{name}.json").write_text(json.dumps(LIVE))
    creds = tmp_path / "creds"
    creds.mkdir(exist_ok=True)
    (creds / "backpack").write_bytes(keys())
    env = {**os.environ, "GRIDBOT_CONFIG_DIR": str(conf), "GRIDBOT_STATE_DIR": str(tmp_path / "state"),
           "GRIDBOT_ACCOUNTS_DIR": str(root), "CREDENTIALS_DIRECTORY": str(creds)}
    env.pop("NOTIFY_SOCKET", None)
    env.pop("STATE_DIRECTORY", None)
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "gridbot.runner", name], env=env, capture_output=True, text=True,
                       timeout=60, cwd=ROOT)
    return r, time.monotonic() - t0


def test_bot_refuses_a_held_symbol_with_exit_78_and_one_line(tmp_path, root):
    with claim("first", live(), root):
        r, _ = _run_bot(tmp_path, "second", root)
    assert r.returncode == 78, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("<3>not starting: ") and "instance first" in lines[0], r.stderr
    assert not (tmp_path / "state" / "second").exists()  # refused before opening anything


def test_bot_with_a_lost_state_refuses_naming_reset(tmp_path, root):
    with claim("bot", live(), root) as c:
        c.new_epoch()  # it traded before; its state is gone now
    r, _ = _run_bot(tmp_path, "bot", root)
    assert r.returncode == 78, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "run `gridbot reset bot`" in lines[0], r.stderr
    assert account.history(root, "backpack", "main", "bot")["epochs"] == [1]
    with claim("other", live(), root):  # the refused bot let go of its lock
        pass
