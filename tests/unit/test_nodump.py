"""gridbot/_nodump.py: no core dump of a process that holds keys (and the unit says LimitCORE=0)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_core_dumps_forbidden_for_key_holders():
    code = ("from gridbot._nodump import forbid_core_dumps, dumpable\n"
            "forbid_core_dumps()\nassert not dumpable()\nprint('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == "ok", r.stderr
    unit = (Path(__file__).resolve().parents[2] / "systemd" / "gridbot@.service").read_text()
    assert "\nLimitCORE=0\n" in unit
