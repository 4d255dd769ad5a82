"""Read-only status port on 127.0.0.1: /healthz, /metrics (Prometheus text), /api/status (JSON).

Plain asyncio streams, no framework: three GET routes do not justify a dependency per bot.
Bound to loopback only; put a reverse proxy in front if it must be reachable.

Any local user can connect, so the port is built to be hammered without hurting the bot: at most
``MAX_CONNECTIONS`` at once (more are closed at once), a request head of at most ``MAX_REQUEST``
bytes read within ``READ_TIMEOUT_S``, at most ``MAX_PER_SECOND`` answers a second, and nothing is
ever logged per connection (a flood leaves the journal alone; ``dropped`` counts what was cut).
/api/status shows the instance's grid: symbol, price, phase, open orders, fills, pairs, profit,
inventory, best bid/ask of the grid, health. Venue balances only with ``web_balances: true``.
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Callable, Optional

MAX_REQUEST = 4096
MAX_CONNECTIONS = 16
MAX_PER_SECOND = 100
READ_TIMEOUT_S = 2.0
HOST = "127.0.0.1"
PRIVATE_KEYS = ("balances",)  # shown only when the operator enables them (web_balances)
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class StatusServer:
    """``snapshot()`` returns the status dict; ``alive()`` says whether the bot is healthy, which means
    trading as configured; ``reasons()`` (optional) says why not, for the 503 body of /healthz."""

    def __init__(self, port: int, snapshot: Callable[[], dict[str, Any]], alive: Callable[[], bool],
                 reasons: Optional[Callable[[], list[str]]] = None, host: str = HOST,
                 show_balances: bool = False) -> None:
        self.port, self.host = port, host
        self._snapshot, self._alive, self._reasons = snapshot, alive, reasons
        self.show_balances = show_balances
        self._server: asyncio.AbstractServer | None = None
        self.active = 0
        self.dropped = 0
        self._window, self._served = 0, 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, reuse_address=True,
                                                  limit=MAX_REQUEST, backlog=MAX_CONNECTIONS)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _public(self) -> dict[str, Any]:
        snap = self._snapshot()
        if not self.show_balances:
            snap = {k: v for k, v in snap.items() if k not in PRIVATE_KEYS}
        return snap

    def _admit(self) -> bool:
        now = int(time.monotonic())
        if now != self._window:
            self._window, self._served = now, 0
        self._served += 1
        return self.active < MAX_CONNECTIONS and self._served <= MAX_PER_SECOND

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._admit():
            self.dropped += 1
            _abort(writer)
            return
        self.active += 1
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
            parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                status, ctype, body = 400, "text/plain", b"bad request\n"
                method = ""
            else:
                method = parts[0]
                status, ctype, body = self.route(method, parts[1].split("?", 1)[0])
            writer.write(f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {ctype}\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                         + (b"" if method == "HEAD" else body))
            await asyncio.wait_for(writer.drain(), READ_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - a client's garbage or hang-up is never the bot's problem
            self.dropped += 1
        finally:
            self.active -= 1
            _abort(writer)

    def route(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"only GET and HEAD\n"
        if path == "/healthz":
            if self._alive():
                return 200, "text/plain", b"ok\n"
            why = (self._reasons() if self._reasons is not None else []) or ["not healthy"]
            return 503, "text/plain", ("degraded: " + "; ".join(why) + "\n").encode()
        if path == "/metrics":
            return 200, "text/plain; version=0.0.4", metrics_text(self._public()).encode()
        if path == "/api/status":
            return 200, "application/json", json.dumps(self._public(), indent=1).encode() + b"\n"
        return 404, "text/plain", b"try /healthz, /metrics or /api/status\n"


def _abort(writer: asyncio.StreamWriter) -> None:
    try:
        writer.close()
    except Exception:  # noqa: BLE001
        pass


def _label(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def metrics_text(s: dict[str, Any]) -> str:
    """Prometheus exposition format from the status dict the runner builds."""
    inst = _label(str(s.get("instance", "")))
    lab = f'instance="{inst}",symbol="{_label(str(s.get("symbol", "")))}"'
    out: list[str] = []

    def gauge(name: str, help_: str, value: Any, extra: str = "", kind: str = "gauge") -> None:
        if value is None:
            return
        if not any(line.startswith(f"# TYPE gridbot_{name} ") for line in out):
            out.append(f"# HELP gridbot_{name} {help_}")
            out.append(f"# TYPE gridbot_{name} {kind}")
        labels = lab + ("," + extra if extra else "")
        out.append(f"gridbot_{name}{{{labels}}} {value}")

    gauge("price", "last traded price", s.get("price"))
    gauge("open_orders", "orders resting on the venue", s.get("open_orders"))
    gauge("fills_total", "fills recorded", s.get("fills"), kind="counter")
    gauge("matched_pairs_total", "completed buy->sell pairs", s.get("pairs"), kind="counter")
    gauge("realised_profit", "grid profit from matched pairs, in quote", s.get("realised_profit"))
    gauge("unpaired_pnl", "mark-to-market PnL not from matched pairs, in quote", s.get("unpaired_pnl"))
    for asset, b in sorted((s.get("balances") or {}).items()):
        gauge("balance", "venue balance", b.get("available"), f'asset="{_label(asset)}",kind="available"')
        gauge("balance", "venue balance", b.get("locked"), f'asset="{_label(asset)}",kind="locked"')
    gauge("last_loop_timestamp_seconds", "unix time of the last main loop pass", s.get("last_loop"))
    gauge("up", "1 while the bot trades as configured (see gridbot_degraded)", 1 if s.get("healthy") else 0)
    health = s.get("health") or {}
    if "reasons" in health:
        gauge("degraded", "1 while the bot is not trading as configured", 1 if health["reasons"] else 0)
        for kind in health.get("kinds", ()):
            gauge("degraded_reason", "why the bot is degraded, one series per condition (see /api/status)", 1,
                  f'reason="{_label(kind)}"')
    gauge("missing_levels", "grid levels without an order on the venue", s.get("missing_levels"))
    gauge("held_levels", "levels refused by the venue, waiting for their retry", s.get("held_levels"))
    return "\n".join(out) + "\n"
