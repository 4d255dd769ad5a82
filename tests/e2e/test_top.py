"""`gridbot top` drawn in a real terminal (tmux, 80x24) against real paper bots in the container."""
from __future__ import annotations

import json
import time

from .conftest import paper_config


def wait_for(pred, timeout=30.0, every=0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"condition not met in time; last: {last!r}")


def test_top_in_tmux_shows_every_instance_sorts_selects_and_quits(box, make_instance):
    names = [make_instance(f"top_{c}", paper_config(low=140, high=160, levels=10)) for c in "abc"]
    assert box.gridbot("start", *names, timeout=120).returncode == 0
    wait_for(lambda: all(r["price"] for r in json.loads(box.gridbot("list", "--json").stdout) if r["name"] in names))
    box.sh("tmux kill-server 2>/dev/null; tmux new-session -d -s top -x 80 -y 24 "
           "'TERM=xterm-256color gridbot top --interval 1; echo EXITED $? > /tmp/top.rc'", check=True)

    def screen():
        return box.sh("tmux capture-pane -p -t top", check=True).stdout

    text = wait_for(lambda: (lambda s: s if all(n in s for n in names) and "<<< price" in s else None)(screen()))
    lines = text.splitlines()
    assert len(lines) <= 24 and max(len(x) for x in lines) <= 80
    head = next(x for x in lines if "NAME" in x and "PNL" in x)
    assert "STATE" in head and "PROFIT" in head
    assert "USDC pnl" in lines[0]  # fleet totals in the title
    assert any("BUY" in x for x in lines) and any("SELL" in x for x in lines)  # the selected bot's grid
    assert "last fills" in text and "log:" in text
    # select the second bot: the detail pane follows
    box.sh("tmux send-keys -t top Down", check=True)
    wait_for(lambda: "top_b running" in screen() or "top_b active" in screen())
    # sort by the next column, reverse: the order of the rows changes to descending names
    box.sh("tmux send-keys -t top r", check=True)

    def order():
        rows = [x.split()[0] for x in screen().splitlines() if x.strip().startswith("top_")]
        return rows if rows[:3] == sorted(names, reverse=True) else None
    wait_for(order)
    box.sh("tmux send-keys -t top q", check=True)
    rc = wait_for(lambda: box.sh("cat /tmp/top.rc 2>/dev/null").stdout.strip())
    assert rc == "EXITED 0"
    box.sh("tmux kill-server 2>/dev/null")


def test_top_refuses_without_a_terminal(box):
    r = box.gridbot("top")
    assert r.returncode == 2 and "needs a terminal" in r.stderr and "Traceback" not in r.stderr
