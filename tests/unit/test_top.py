"""`gridbot top` headless (textual's pilot) on figure files, and in a real terminal (tmux) at 80x24."""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from gridbot.cli import commands
from gridbot.cli._top import Top

from .test_dashboard import write_fleet

ROOT = Path(__file__).resolve().parents[2]


def test_top_lists_sorts_selects_and_quits_headless(tmp_path):
    write_fleet(tmp_path, 4)

    async def drive():
        app = Top(lambda: commands._figures_only(tmp_path), lambda name: [f"log of {name}"], interval=0.5)
        async with app.run_test(size=(80, 24)) as pilot:
            for _ in range(20):
                await pilot.pause(0.1)
                if app.recs:
                    break
            from textual.widgets import DataTable

            table = app.query_one("#fleet", DataTable)
            assert table.row_count == 4
            first = [str(table.get_row_at(i)[0]) for i in range(4)]
            assert first == ["bot000", "bot001", "bot002", "bot003"]
            await pilot.press("r")  # reverse the NAME sort
            await pilot.pause(0.2)
            assert [str(table.get_row_at(i)[0]) for i in range(4)] == first[::-1]
            await pilot.press("s")  # next column: MODE
            assert app.sort_col == "MODE" and app.reverse is False
            await pilot.press("down")
            await pilot.pause(0.6)
            assert app.selected is not None
            grid = str(app.query_one("#grid").render())
            assert app.selected in grid and "<<< price" in grid
            await pilot.press("q")
        return app.return_code

    assert asyncio.run(drive()) in (0, None)


def test_top_in_tmux_draws_every_instance_at_80x24_and_quits(tmp_path):
    assert shutil.which("tmux"), "tmux is installed by scripts/setup.sh"
    write_fleet(tmp_path, 3)
    sock = str(tmp_path / "tmux.sock")
    rc = tmp_path / "rc"
    cmd = f"TERM=xterm-256color {sys.executable} -m gridbot top --figures-dir {tmp_path}; echo $? > {rc}"
    subprocess.run(["tmux", "-S", sock, "new-session", "-d", "-x", "80", "-y", "24", cmd], check=True, cwd=ROOT,
                   env={**os.environ, "TMUX": ""})
    try:
        screen = ""
        for _ in range(60):
            screen = subprocess.run(["tmux", "-S", sock, "capture-pane", "-p"], capture_output=True, text=True).stdout
            if all(f"bot00{i}" in screen for i in range(3)) and "<<< price" in screen:
                break
            time.sleep(0.25)
        lines = screen.splitlines()
        assert all(f"bot00{i}" in screen for i in range(3)) and "<<< price" in screen, screen
        assert len(lines) <= 24 and max(map(len, lines)) <= 80
        assert "USDC pnl +2.75" in lines[0] and "USDT pnl" in lines[0]  # fleet totals in the title
        subprocess.run(["tmux", "-S", sock, "send-keys", "q"], check=True)
        for _ in range(40):
            if rc.exists():
                break
            time.sleep(0.25)
        assert rc.read_text().strip() == "0"
    finally:
        subprocess.run(["tmux", "-S", sock, "kill-server"], capture_output=True)
