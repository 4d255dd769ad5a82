"""gridbot/_statelock.py: one bot per state directory."""
from __future__ import annotations

import os
import subprocess
import sys


def test_state_lock_refuses_a_second_bot(tmp_path):
    from gridbot import _statelock

    fd = _statelock.acquire(tmp_path / "s", "x")
    try:
        code = ("import sys; from pathlib import Path; from gridbot import _statelock\n"
                "try:\n    _statelock.acquire(Path(sys.argv[1]), 'x')\nexcept _statelock.StateLocked as e:\n"
                "    print(e); sys.exit(3)\n")
        r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s")], capture_output=True, text=True, timeout=30)
        assert r.returncode == 3 and "locked by another process" in r.stdout and "gridbot stop x" in r.stdout
    finally:
        os.close(fd)
    os.close(_statelock.acquire(tmp_path / "s", "x"))  # free again once the holder is gone
