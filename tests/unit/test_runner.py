"""gridbot/runner.py's pure parts, in-process (the bot as a process: tests/bot/)."""
from __future__ import annotations

from pathlib import Path


def test_run_by_hand_never_writes_state_into_the_cwd(tmp_path, monkeypatch):
    from gridbot import runner

    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.delenv("GRIDBOT_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    assert runner.state_dir_for("n") == Path("/var/lib/gridbot/n")
    assert runner.state_dir_for("n", user=True) == tmp_path / "xdg" / "gridbot" / "n"
