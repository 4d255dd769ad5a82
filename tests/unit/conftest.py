"""Shared by the unit tests: a good paper config, and the CLI as a process (no systemd needed)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from gridbot import config as cfgmod

GOOD = {"symbol": "SOL_USDC", "lower_price": 100, "upper_price": 200, "levels": 10, "qty_per_level": 0.1}
GRIDBOT = [sys.executable, "-m", "gridbot"]


def parse(**over):
    """GOOD with ``over`` applied, through the config parser."""
    return cfgmod.parse_config(json.dumps({**GOOD, **over}), "t.json")


def run(args, cfg_dir: Path, **env):
    """``gridbot ARGS`` with its configs in cfg_dir."""
    e = {**os.environ, "GRIDBOT_CONFIG_DIR": str(cfg_dir), **env}
    e.pop("CONFIGURATION_DIRECTORY", None)
    return subprocess.run(GRIDBOT + args, capture_output=True, text=True, env=e, timeout=60)
