"""The dashboard server from figure files (no systemd): fleet JSON, read-only, Host check, and the
page itself in headless Chromium (every instance and its figures render, no console message)."""
from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from decimal import Decimal as D
from pathlib import Path

import pytest

from gridbot import dashboard, figures as fg
from gridbot_testsupport import browser


ROOT = Path(__file__).resolve().parents[2]


def write_fleet(d: Path, n: int = 3) -> None:
    now = time.time()
    for i in range(n):
        name, quote = f"bot{i:03d}", "USDT" if i == n - 1 else "USDC"
        lines = [str(140 + 2 * k) for k in range(11)]
        fg.write_atomic(d / f"{name}.json", {
            "v": 1, "name": name, "mode": "live" if i == 1 else "paper", "exchange": "paper", "symbol": f"SOL_{quote}",
            "base": "SOL", "quote": quote, "price": str(150 + i), "lower": "140", "upper": "160", "levels": 10,
            "orders_open": 10, "orders_buy": 5, "orders_sell": 5, "levels_missing": 0,
            "realised_profit": f"{1.25 * (i + 1)}", "unrealised_pnl": "-0.5", "total_pnl": f"{1.25 * (i + 1) - 0.5}",
            "fees_in_quote": "0.01", "fees_base": "0", "fees_quote": "0.01", "fills": 3 + i, "pairs": 1,
            "base_held": "1", "base_in_orders": "0.5", "quote_in_orders": "700", "phase": "running", "note": "",
            "lines": lines, "orders": [["buy", x, "0.1"] for x in lines[:5]] + [["sell", x, "0.1"] for x in lines[6:]],
            "recent_fills": [{"side": "buy", "price": "148", "qty": "0.1", "fee": "0", "fee_asset": "SOL",
                              "time": now - 30}], "time": now})
        fg.write_atomic(d / f"{name}.history.json", {"v": 1, "name": name, "quote": quote, "time": now,
                                                      "points": [[now - 60 * k, "150", str(0.01 * k), "0"]
                                                                 for k in range(600, -1, -1)]})


@pytest.fixture
def server(tmp_path):
    write_fleet(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "gridbot", "web", "--port", "0", "--figures-dir", str(tmp_path),
                             "--allow-host", "dash.example"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    port = int(line.split("127.0.0.1:")[1].split("/")[0])
    yield port, tmp_path
    proc.terminate()
    assert proc.wait(10) == 0


def get(port, path, host=None, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request(method, path, headers={"Host": host or f"127.0.0.1:{port}"})
    r = c.getresponse()
    return r.status, dict(r.getheaders()), r.read()


def test_fleet_json_carries_every_instance_totals_and_a_bounded_history(server):
    port, _ = server
    status, headers, body = get(port, "/api/fleet")
    doc = json.loads(body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert [x["name"] for x in doc["instances"]] == ["bot000", "bot001", "bot002"]
    a = doc["instances"][0]
    assert (a["total_pnl"], a["realised_profit"], a["orders_open"], a["mode"]) == ("0.75", "1.25", 10, "paper")
    assert len(a["history"]) == dashboard.HISTORY_POINTS and a["history"][-1][2] == "0.0"  # newest kept
    usdc = next(t for t in doc["totals"] if t["quote"] == "USDC")
    assert D(usdc["total_pnl"]) == D("0.75") + D("2.0") and usdc["instances"] == 2


def test_read_only_host_checked_and_locked_down(server):
    port, _ = server
    assert get(port, "/api/fleet", method="POST")[0] == 405
    assert get(port, "/api/fleet", method="DELETE")[0] == 405
    assert get(port, "/api/fleet", host="evil.example:80")[0] == 421  # DNS rebinding
    assert get(port, "/api/fleet", host=f"dash.example:{port}")[0] == 200  # --allow-host
    assert get(port, "/../../etc/passwd")[0] == 404 and get(port, "/static/../dashboard.py")[0] == 404
    status, headers, body = get(port, "/", host=f"localhost:{port}")
    assert status == 200 and b"/static/app.js" in body
    assert "default-src 'none'" in headers["Content-Security-Policy"] and headers["X-Frame-Options"] == "DENY"
    assert get(port, "/static/uPlot.iife.min.js")[0] == 200  # shipped in the package, no CDN


def test_fleet_json_of_100_instances_is_served_in_under_100_ms(tmp_path):
    write_fleet(tmp_path, 100)
    snap = dashboard.Snapshot(lambda: dashboard.collect_files(tmp_path), 2.0)
    snap.refresh()
    assert len(json.loads(snap.body)["instances"]) == 100
    from http.server import ThreadingHTTPServer
    import threading

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), dashboard.make_handler(snap, set()))
    port = httpd.server_address[1]
    httpd.RequestHandlerClass = dashboard.make_handler(snap, {f"127.0.0.1:{port}"})
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        times = []
        for _ in range(5):
            t = time.perf_counter()
            status, _, body = get(port, "/api/fleet")
            times.append(time.perf_counter() - t)
            assert status == 200 and len(json.loads(body)["instances"]) == 100
        assert min(times) < 0.1, times
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_thin_keeps_the_newest_and_at_most_n():
    pts = [[i] for i in range(1000)]
    out = dashboard.thin(pts, 50)
    assert len(out) == 50 and out[-1] == [999] and out[0] == [0] and out == sorted(out)
    assert dashboard.thin(pts[:10], 50) == pts[:10]


def test_page_renders_every_instance_in_headless_chromium(server):
    port, d = server
    page = browser.load(f"http://127.0.0.1:{port}/")
    assert page.console == []  # no error, no warning, nothing
    assert 'data-instances="3"' in page.dom
    cards = browser.Cards(page.dom).cards
    assert sorted(cards) == ["bot000", "bot001", "bot002"]
    for name, c in cards.items():
        fig = json.loads((d / f"{name}.json").read_text())
        v = D(fig["total_pnl"])
        assert c["pnl"] == f"{'+' if v >= 0 else ''}{v:.{2 if abs(v) >= 1 else 4}f} {fig['quote']}"
        assert c["price"] == f"{fig['price']} {fig['quote']}"
        assert c["orders"] == "10/10 (5 buy, 5 sell)"
        assert c["canvas"] >= 1 and c["fill_rows"] == 1  # equity chart drawn, last fill listed
        assert c["state"] == "running" and c["badge"] == fig["mode"]
    totals = browser.Cards(page.dom).totals
    assert "USDC (2) pnl +2.75 USDC" in totals["USDC"]
