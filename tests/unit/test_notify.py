"""gridbot/notify.py: sd_notify's one datagram (abstract sockets, the watchdog interval) and the
journal's priority prefixes."""
from __future__ import annotations

import io
import logging
import os
import socket

from gridbot.notify import JournalFormatter, Notifier


def test_notifier_abstract_socket_and_watchdog_interval(monkeypatch):
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"gridbot-test-{os.getpid()}"
    rx.bind("\0" + name)
    rx.settimeout(2)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    n = Notifier("@" + name)
    assert n.watchdog_interval == 15.0
    assert n.ready("up\nand running")
    assert rx.recv(1024) == b"READY=1\nSTATUS=up and running"
    rx.close()
    assert Notifier("").send(READY="1") is False
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert Notifier("@x").watchdog_interval is None  # watchdog meant for another process


def test_journal_formatter_prefixes_every_line():
    buf = io.StringIO()
    h = logging.StreamHandler(buf)
    h.setFormatter(JournalFormatter("%(message)s"))
    lg = logging.getLogger("t-journal")
    lg.addHandler(h)
    lg.setLevel(logging.DEBUG)
    lg.propagate = False
    try:
        raise ValueError("boom")
    except ValueError:
        lg.exception("failed\nsecond line")
    lg.warning("w")
    lg.debug("d")
    lines = buf.getvalue().splitlines()
    assert lines[0] == "<3>failed" and lines[1] == "<3>second line"
    assert any(line.startswith("<3>Traceback") for line in lines)
    assert all(line.startswith("<3>") for line in lines[:-2])
    assert lines[-2:] == ["<4>w", "<7>d"]
