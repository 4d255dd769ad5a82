"""gridbot/status_http.py: the status port's answers, its private balances and its limits under a flood."""
from __future__ import annotations

import asyncio
import json


# -- the status port ------------------------------------------------------------------------------
def _serve(server_kw: dict, client):
    from gridbot.status_http import StatusServer

    snap = {"instance": "x", "symbol": "SOL_USDC", "price": "1", "balances": {"USDC": {"available": "5", "locked": "0"}}}

    async def main():
        srv = StatusServer(0, lambda: dict(snap), lambda: True, **server_kw)
        srv._server = await asyncio.start_server(srv._handle, "127.0.0.1", 0, limit=4096)
        port = srv._server.sockets[0].getsockname()[1]
        try:
            return await client(port, srv)
        finally:
            await srv.close()

    return asyncio.run(main())


async def _req(port: int, raw: bytes) -> bytes:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(raw)
    await w.drain()
    data = await asyncio.wait_for(r.read(), 5)
    w.close()
    return data


def test_status_head_has_no_body_and_balances_are_private_by_default():
    async def client(port, srv):
        head = await _req(port, b"HEAD /api/status HTTP/1.1\r\n\r\n")
        get = await _req(port, b"GET /api/status HTTP/1.1\r\n\r\n")
        metrics = await _req(port, b"GET /metrics HTTP/1.1\r\n\r\n")
        return head, get, metrics

    head, get, metrics = _serve({}, client)
    assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n") and b"Content-Length: " in head
    body = json.loads(get.split(b"\r\n\r\n", 1)[1])
    assert body["symbol"] == "SOL_USDC" and "balances" not in body
    assert b"gridbot_balance" not in metrics
    _h, get, metrics = _serve({"show_balances": True}, client)
    assert json.loads(get.split(b"\r\n\r\n", 1)[1])["balances"]["USDC"]["available"] == "5"
    assert b"gridbot_balance" in metrics


def test_status_port_bounds_requests_and_connections():
    from gridbot import status_http

    async def client(port, srv):
        huge = await _req(port, b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n")
        garbage = await _req(port, b"\x00\xff garbage\r\n\r\n")
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(status_http.MAX_CONNECTIONS + 4)]
        await asyncio.sleep(0.2)
        busy = srv.active
        for _r, w in idle:
            w.close()
        return huge, garbage, busy, srv.dropped

    huge, garbage, busy, dropped = _serve({}, client)
    assert huge == b"" and garbage.startswith(b"HTTP/1.1 400")
    assert busy <= status_http.MAX_CONNECTIONS and dropped >= 4


def test_status_port_flood_is_silent(caplog):
    async def client(port, srv):
        async def hit():
            try:
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(b"GET /metrics HT")
                w.close()
            except OSError:
                pass
        await asyncio.gather(*(hit() for _ in range(300)))
        await asyncio.sleep(0.3)
        return srv.dropped

    with caplog.at_level("DEBUG"):
        dropped = _serve({}, client)
    assert dropped > 0
    assert not [r for r in caplog.records if r.levelno >= 30], [r.getMessage() for r in caplog.records]
