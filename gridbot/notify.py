"""systemd integration with the standard library only: sd_notify, the watchdog, journald log lines.

Kept free of pystemd/libsystemd so a bot process stays small; the protocol is one datagram.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Optional, TextIO

# journald/syslog priorities for stderr lines (SyslogLevelPrefix=yes is systemd's default)
_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


class Notifier:
    """Sends ``KEY=value`` datagrams to ``$NOTIFY_SOCKET``; a no-op when not run by systemd."""

    def __init__(self, address: Optional[str] = None) -> None:
        addr = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        self.address = ("\0" + addr[1:]) if addr.startswith("@") else addr  # '@' = abstract namespace
        self._sock: Optional[socket.socket] = None
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        ok = usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
        # systemd recommends pinging at half the timeout
        self.watchdog_interval: Optional[float] = int(usec) / 2e6 if ok else None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, **fields: str) -> bool:
        """``send(READY="1", STATUS="...")``; returns False if there is no socket or it failed."""
        if not self.address:
            return False
        msg = "\n".join(f"{k}={_one_line(v)}" for k, v in fields.items()).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(msg, self.address)
            return True
        except OSError:
            return False  # systemd gone or socket full: never let notification kill the bot

    def ready(self, status: str) -> bool:
        return self.send(READY="1", STATUS=status)

    def status(self, status: str, watchdog: bool = False) -> bool:
        return self.send(WATCHDOG="1", STATUS=status) if watchdog else self.send(STATUS=status)

    def watchdog(self) -> bool:
        return self.send(WATCHDOG="1")

    def stopping(self, status: str = "shutting down") -> bool:
        return self.send(STOPPING="1", STATUS=status)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _one_line(v: str) -> str:
    return str(v).replace("\n", " ")


class JournalFormatter(logging.Formatter):
    """Prefix *every* line with ``<N>``: journald splits on newlines, and an unprefixed traceback
    line would land at priority 6 (info)."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prefix = f"<{_PRIORITY.get(record.levelno, 6 if record.levelno < logging.WARNING else 3)}>"
        return "\n".join(prefix + line for line in text.splitlines() or [""])


def setup_logging(level: int = logging.INFO, stream: Optional[TextIO] = None) -> logging.Logger:
    """Log to stderr with journald priority prefixes; no timestamps (journald adds its own)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JournalFormatter("%(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    return logging.getLogger("gridbot")
