"""Headless Chromium (Debian's package) for the dashboard tests: load a page, let its scripts run
and fetch, return the DOM and every console message (errors included)."""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0"]


@dataclass
class Page:
    dom: str
    console: list[str]


def load(url: str, budget_ms: int = 6000) -> Page:
    """--virtual-time-budget lets timers and fetches run before the DOM is dumped."""
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
                            "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return Page(r.stdout, re.findall(r":CONSOLE[^\]]*\] (.*)", r.stderr))


class Cards(HTMLParser):
    """The dashboard's cards: name -> {dd class: text}, plus canvases and fill rows per card."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.cards: dict[str, dict] = {}
        self.totals: dict[str, str] = {}
        self._card = None
        self._field = None
        self._total = None
        self.feed(dom)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section" and "card" in (a.get("class") or "").split():
            self._card = self.cards.setdefault(a["data-name"], {"canvas": 0, "fill_rows": 0, "bad": "bad" in a["class"]})
        elif self._card is not None and tag == "dd":
            self._field = (a.get("class") or "").split()[0]
            self._card[self._field] = ""
        elif self._card is not None and tag == "canvas":
            self._card["canvas"] += 1
        elif self._card is not None and tag == "tr":
            self._card["fill_rows"] += 1
        elif self._card is not None and tag == "span" and (a.get("class") or "") in ("state", "name", "badge", "badge live"):
            self._field = (a.get("class") or "").split()[0]
            self._card[self._field] = ""
        elif tag == "div" and (a.get("class") or "") == "total":
            self._total = a.get("data-quote")
            self.totals[self._total] = ""
        if tag == "footer":
            self._card = None

    def handle_endtag(self, tag):
        if tag in ("dd", "span"):
            self._field = None
        if tag == "div":
            self._total = None  # a total's div holds spans only

    def handle_data(self, data):
        if self._card is not None and self._field:
            self._card[self._field] += data
        elif self._total is not None and self._card is None:
            self.totals[self._total] += data
