"""The dashboard as installed: gridbot-web.service (sandboxed, DynamicUser, loopback) against real
paper bots, its fleet JSON timed, and its page in headless Chromium on the host."""
from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from decimal import Decimal as D

from gridbot_testsupport import browser, free_port

from .conftest import paper_config


def wait_for(pred, timeout=30.0, every=0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
        except (OSError, ValueError, KeyError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(every)
    raise AssertionError(f"condition not met in time; last: {last!r}")


def money(s: str, quote: str) -> str:
    v = D(s)
    return f"{'+' if v >= 0 else ''}{v:.{2 if abs(v) >= 1 else 4}f} {quote}"


def test_web_service_serves_every_instance_and_the_page_renders(box, make_instance):
    cfg = json.loads(paper_config(low=140, high=160, levels=10))
    cfg["paper"]["price"].update(volatility=0.01)
    names = [make_instance(f"web_{c}", json.dumps(cfg)) for c in "abc"]
    assert box.gridbot("start", *names, timeout=120).returncode == 0
    port = free_port()
    box.put("/etc/systemd/system/gridbot-web.service.d/port.conf", f"[Service]\nEnvironment=GRIDBOT_WEB_PORT={port}\n")
    box.sh("systemctl daemon-reload && systemctl start gridbot-web.service", check=True, timeout=60)
    try:
        base = f"http://127.0.0.1:{port}"

        def fleet():
            doc = json.loads(urllib.request.urlopen(base + "/api/fleet", timeout=5).read())
            mine = {x["name"]: x for x in doc["instances"] if x["name"] in names}
            return doc if len(mine) == 3 and all(x["price"] and x["history"] for x in mine.values()) else None
        doc = wait_for(fleet, timeout=40)
        # sandboxed, unprivileged, read-only
        user = box.sh("ps -o user= -p $(systemctl show -P MainPID gridbot-web.service)", check=True).stdout.strip()
        assert user == "gridbot-web"  # a user of its own: not root, not the bots' user
        out = box.run(["systemd-analyze", "security", "--no-pager", "gridbot-web.service"], check=True).stdout
        score = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", out).group(1))
        assert score <= 1.0, out[-1500:]  # as a paper bot: 0.9 "SAFE" with the network limited to loopback
        req = urllib.request.Request(base + "/api/fleet", method="POST", data=b"x")
        try:
            urllib.request.urlopen(req, timeout=5)
            raise AssertionError("POST accepted")
        except urllib.error.HTTPError as exc:
            assert exc.code == 405
        # served fast: the JSON is built by the collector thread, not per request
        times = []
        for _ in range(5):
            t = time.perf_counter()
            urllib.request.urlopen(base + "/api/fleet", timeout=5).read()
            times.append(time.perf_counter() - t)
        assert min(times) < 0.1, times

        page = browser.load(base + "/")
        assert page.console == []
        cards = browser.Cards(page.dom).cards
        assert set(names) <= set(cards)
        for n in names:
            c = cards[n]
            assert c["state"] == "running" and c["badge"] == "paper" and c["canvas"] >= 1
            assert c["pnl"].endswith(" USDC") and c["pnl"][0] in "+-"
            assert c["orders"].split("/")[1].startswith("10 ")

        # frozen figures (stopped bots keep their last ones): the page shows exactly the bot's numbers
        box.gridbot("stop", *names, check=True, timeout=120)
        listed = {x["name"]: x for x in json.loads(box.gridbot("list", "--json", check=True).stdout)}
        wait_for(lambda: all(x["state"] == "inactive" for x in json.loads(
            urllib.request.urlopen(base + "/api/fleet", timeout=5).read())["instances"] if x["name"] in names))
        cards = browser.Cards(browser.load(base + "/").dom).cards
        for n in names:
            assert cards[n]["pnl"] == money(listed[n]["total_pnl"], "USDC")
            assert cards[n]["profit"] == money(listed[n]["realised_profit"], "USDC")
            assert cards[n]["price"] == f"{listed[n]['price']} USDC"
            assert cards[n]["state"] == "inactive"
    finally:
        box.sh("systemctl stop gridbot-web.service; rm -rf /etc/systemd/system/gridbot-web.service.d; "
               "systemctl daemon-reload", timeout=60)
