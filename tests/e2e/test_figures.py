"""Figures against a real systemd: every bot publishes them, `gridbot list` shows them (equal to the
bot's own accounting), a TOTAL row per quote, whole when piped, readable by a plain user."""
from __future__ import annotations

import functools
import json
from decimal import Decimal as D

from gridbot_testsupport import free_port

from .conftest import paper_config
from .conftest import wait_for as _wait_for

Q8 = D("0.00000001")
wait_for = functools.partial(_wait_for, timeout=30.0, every=0.3)  # figures are published every 2 s at most


def listing(box, user=None) -> dict:
    r = box.gridbot("list", "--json", check=True, user=user)
    return {row["name"]: row for row in json.loads(r.stdout)}


def lively(**kw) -> str:
    """A paper grid whose price moves enough to fill orders within seconds."""
    cfg = json.loads(paper_config(low=140, high=160, levels=10, **kw))
    cfg["paper"]["price"].update(volatility=0.01)
    return json.dumps(cfg)


def api_status(box, port: int) -> dict:
    r = box.run(["python3", "-c", f"import urllib.request;print(urllib.request.urlopen("
                                  f"'http://127.0.0.1:{port}/api/status',timeout=5).read().decode())"], check=True)
    return json.loads(r.stdout)


def test_list_figures_equal_the_bots_own_accounting(box, make_instance):
    port = free_port()
    names = [make_instance("fig_a", lively(web_port=port)), make_instance("fig_b", lively()),
             make_instance("fig_c", lively(symbol="SOL_USDT"))]
    r = box.gridbot("start", *names, timeout=120)
    assert r.returncode == 0, r.stderr
    # the files: one per bot, world-readable, in the shared figures directory
    mode = box.sh("stat -c '%a %U:%G' /run/gridbot/figures", check=True).stdout.split()
    assert mode == ["2775", "root:gridbot"]
    wait_for(lambda: all(listing(box)[n]["price"] for n in names))
    assert box.sh("stat -c %a /run/gridbot/figures/fig_a.json", check=True).stdout.strip() == "644"
    # against the bot's own /api/status (a figure set is at most 2 s old: retry until both saw one price)
    wait_for(lambda: listing(box)["fig_a"]["fills"] > 0, timeout=60)

    def same():
        row, api = listing(box)["fig_a"], api_status(box, port)
        if row["price"] != api["price"] or row["fills"] != api["fills"]:
            return None
        return row, api
    row, api = wait_for(same, timeout=40, every=0.5)
    assert D(row["total_pnl"]) == D(api["total_pnl"]).quantize(Q8)
    assert D(row["realised_profit"]) == D(api["realised_profit"]).quantize(Q8)
    assert D(row["unrealised_pnl"]) == D(api["unpaired_pnl"]).quantize(Q8)
    assert (row["orders_open"], row["pairs"], row["phase"]) == (api["open_orders"], api["pairs"], api["phase"])
    assert (row["mode"], row["symbol"], D(row["lower"]), D(row["upper"]), row["levels"]) == \
        ("paper", "SOL_USDC", 140, 160, 10)
    # STATUS= labels every figure
    status = row["status_text"]
    assert status.startswith("SOL ") and " orders | grid " in status and " USDC (" in status and "| pnl " in status

    # a plain local user (not gridbot-ops) sees the same figures
    plain = listing(box, user="outsider")
    assert plain["fig_b"]["total_pnl"] is not None and plain["fig_c"]["quote"] == "USDT"

    # freeze the figures (stopped bots keep their last ones), then: TOTAL rows are the sums
    box.gridbot("stop", *names, check=True, timeout=120)
    recs = listing(box)
    text = box.gridbot("list", check=True, env={"COLUMNS": "40"}).stdout.splitlines()
    head = text[0].split()
    assert head == ["NAME", "MODE", "STATE", "SYMBOL", "PRICE", "RANGE", "ORDERS", "PROFIT", "PNL", "UPTIME",
                    "RESTARTS", "CPU", "MEMORY", "BOOT"]  # piped: whole even with COLUMNS=40
    assert not any("…" in ln or "\x1b[" in ln for ln in text)
    for quote in ("USDC", "USDT"):
        mine = [x for x in recs.values() if x["quote"] == quote]
        total_line = next(ln for ln in text if ln.startswith(f"TOTAL {quote} ({len(mine)})"))
        profit, pnl = total_line.split()[-2:]
        assert D(pnl) == sum(D(x["total_pnl"]) for x in mine).quantize(D(pnl))
        assert D(profit) == sum(D(x["realised_profit"]) for x in mine).quantize(D(profit))
    fa = next(ln for ln in text if ln.startswith("fig_a "))
    assert "inactive" in fa and "paper" in fa and f"{recs['fig_a']['lower']}-{recs['fig_a']['upper']}" in fa
