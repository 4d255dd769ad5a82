"""``gridbot web``: the fleet dashboard, one read-only page on 127.0.0.1.

A collector thread builds the fleet JSON every ``interval`` seconds (systemd's rows over one
D-Bus connection, plus each bot's figures and equity history from the figures directory) and
keeps it serialized; requests only copy those bytes out, so ``/api/fleet`` answers in well under
a millisecond whatever the fleet size. Nothing is fetched from elsewhere: the page, its script
and the chart library (uPlot, MIT, vendored in ``gridbot/web/``) ship inside the package.

Read-only by construction: GET and HEAD only, no parameters, no credentials, a Host check
against DNS rebinding, and a strict Content-Security-Policy. Stdlib only (http.server).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Optional

WEB_DIR = Path(__file__).resolve().parent / "web"
STATIC = {  # URL path -> (file, content type); nothing else is served
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/app.css": ("app.css", "text/css; charset=utf-8"),
    "/static/uPlot.iife.min.js": ("uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    "/static/uPlot.min.css": ("uPlot.min.css", "text/css; charset=utf-8"),
    "/static/uPlot.LICENSE": ("uPlot.LICENSE", "text/plain; charset=utf-8"),
}
HISTORY_POINTS = 240  # per instance in the fleet JSON
FILLS = 5
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
log = logging.getLogger("gridbot.web")


def thin(points: list, n: int = HISTORY_POINTS) -> list:
    """At most ``n`` points, evenly spread, the newest always kept."""
    if len(points) <= n:
        return list(points)
    step = len(points) / n
    out = [points[int(i * step)] for i in range(n - 1)]
    return out + [points[-1]]


def fleet_document(records: list[dict], figs: dict[str, dict], histories: dict[str, Optional[dict]],
                   now: float) -> dict[str, Any]:
    """The ``/api/fleet`` JSON: list records, each with its grid, orders, last fills and equity
    history, and the totals per quote asset. Pure."""
    from ._view import totals

    out = []
    for rec in records:
        fig = figs.get(rec["name"]) or {}
        hist = histories.get(rec["name"]) or {}
        out.append(dict(rec, lines=fig.get("lines") or [], orders=fig.get("orders") or [],
                        recent_fills=(fig.get("recent_fills") or [])[:FILLS],
                        stop_loss=fig.get("stop_loss"), take_profit=fig.get("take_profit"),
                        history=thin(hist.get("points") or [])))
    return {"v": 1, "time": round(now, 3), "instances": out, "totals": totals(records)}


def collect(ctx: Any) -> dict[str, Any]:
    """One fleet document from systemd and the figures directory."""
    from . import fleet
    from . import figures as fg

    recs, figs = fleet.records(ctx, fleet.rows(ctx))
    d = fleet.figures_dir(ctx)
    hists = {n: fg.read(d, n, history=True) for n in figs}
    return fleet_document(recs, figs, hists, time.time())


def collect_files(directory: Path) -> dict[str, Any]:
    """A fleet document from figure files alone (``gridbot web --figures-dir``; no systemd)."""
    from . import figures as fg
    from ._view import record
    from ._units import unit_name
    from .systemd import UnitRow

    figs = fg.read_all(directory)
    rows = [UnitRow(n, unit_name(n, checked=False), "loaded", "active", "running") for n in sorted(figs)]
    hists = {n: fg.read(directory, n, history=True) for n in figs}
    return fleet_document([record(x, figs[x.name]) for x in rows], figs, hists, time.time())


class Snapshot:
    """The latest fleet JSON, serialized once per refresh; a failed refresh keeps the last one."""

    def __init__(self, build: Callable[[], dict[str, Any]], interval: float) -> None:
        self.build, self.interval = build, interval
        self.body = b'{"v":1,"time":0,"instances":[],"totals":[],"error":"starting"}'
        self.lock = threading.Lock()
        self._stop = threading.Event()

    def refresh(self) -> None:
        try:
            doc = self.build()
        except Exception as exc:  # noqa: BLE001 - the page shows the error, the server lives on
            log.warning("fleet refresh failed: %s", exc)
            try:
                doc = json.loads(self.body)
            except ValueError:
                doc = {"v": 1, "instances": [], "totals": []}
            doc["error"] = str(exc)
        body = json.dumps(doc, separators=(",", ":")).encode()
        with self.lock:
            self.body = body

    def run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.refresh()
            self._stop.wait(max(self.interval - (time.monotonic() - started), 0.2))

    def stop(self) -> None:
        self._stop.set()


def make_handler(snapshot: Snapshot, allowed_hosts: set[str]) -> type:
    cache: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        server_version = "gridbot-web"
        sys_version = ""
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet: no access log in the journal
            pass

        def _send(self, code: int, body: bytes, ctype: str, head_only: bool = False) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in SECURITY_HEADERS.items():
                self.send_header(k, v)
            self.end_headers()
            if not head_only:
                self.wfile.write(body)

        def do_GET(self, head_only: bool = False) -> None:  # noqa: N802
            host = (self.headers.get("Host") or "").lower()
            if host not in allowed_hosts:
                self._send(421, b"unknown host\n", "text/plain; charset=utf-8", head_only)
                return
            path = self.path.split("?", 1)[0]
            if path == "/api/fleet":
                with snapshot.lock:
                    body = snapshot.body
                self._send(200, body, "application/json", head_only)
                return
            if path in STATIC:
                name, ctype = STATIC[path]
                if name not in cache:
                    cache[name] = (WEB_DIR / name).read_bytes()
                self._send(200, cache[name], ctype, head_only)
                return
            self._send(404, b"not found\n", "text/plain; charset=utf-8", head_only)

        def do_HEAD(self) -> None:  # noqa: N802
            self.do_GET(head_only=True)

        def _refuse(self) -> None:
            self._send(405, b"read-only\n", "text/plain; charset=utf-8")

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse  # noqa: N815

    return Handler


def serve(ctx: Any, host: str = "127.0.0.1", port: int = 8787, interval: float = 2.0,
          ready: Optional[Callable[[int], None]] = None, figures_dir: Optional[Path] = None,
          allow_hosts: tuple[str, ...] = ()) -> None:
    """Serve until SIGTERM/SIGINT. Requests must name this server in their Host header: the
    loopback names, ``host`` itself, or one of ``allow_hosts`` (what a browser elsewhere types)."""
    import signal

    build = (lambda: collect_files(figures_dir)) if figures_dir is not None else (lambda: collect(ctx))
    snapshot = Snapshot(build, interval)
    snapshot.refresh()
    httpd = ThreadingHTTPServer((host, port), None)  # type: ignore[arg-type]
    httpd.daemon_threads = True
    real_port = httpd.server_address[1]
    names = {host, "localhost", "127.0.0.1", "[::1]", *allow_hosts}
    allowed = {f"{h}:{real_port}".lower() for h in names} | ({h.lower() for h in names} if real_port == 80 else set())
    httpd.RequestHandlerClass = make_handler(snapshot, allowed)
    worker = threading.Thread(target=snapshot.run, name="collector", daemon=True)
    worker.start()

    def stop(*_: Any) -> None:
        snapshot.stop()
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if ready is not None:
        ready(real_port)
    try:
        httpd.serve_forever(poll_interval=0.5)
    finally:
        httpd.server_close()
