"""Shared by the bot tests: the runner's ``Bot`` in-process against the fake Backpack server
(gridbot_testsupport.fake_backpack), and the bot as a process (``python -m gridbot.runner``) with its
environment, notify socket and shutdown."""
from __future__ import annotations

import asyncio
import contextlib
import base64
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal as D
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from gridbot import strategy as st
from gridbot.exchange import _sign
from gridbot.exchange.backpack import BackpackExchange
from gridbot.models import GridConfig
from gridbot.notify import Notifier
from gridbot.runner import Bot
from gridbot.store import OPEN, Store
from gridbot_testsupport.fake_backpack import FakeBackpack

ROOT = Path(__file__).resolve().parents[2]

SECRET = base64.b64encode(bytes(range(32))).decode()
PUB = _sign.public_key_b64(_sign.load_private_key(SECRET))
OTHER_SECRET = base64.b64encode(bytes(range(100, 132))).decode()


def config(url: str, **over: Any) -> GridConfig:
    """4 levels on SOL_USDC: lines 140 145 150 155 160 around 150 (buys 140/145, sells 155/160)."""
    d: dict[str, Any] = {"exchange": "backpack", "symbol": "SOL_USDC", "lower_price": "140", "upper_price": "160",
                         "levels": 4, "qty_per_level": "0.5", "on_stop": "keep", "reconcile_interval_s": 60,
                         "backpack": {"base_url": url, "poll_interval_s": 0.2}}
    d.update(over)
    return GridConfig.model_validate(d)


@pytest.fixture
def fake():
    with FakeBackpack(PUB, balances={"SOL": D(0), "USDC": D(10000)}, prices={"SOL_USDC": D(150)}) as f:
        yield f


class Recorder(Notifier):
    """A notifier that keeps what it would have told systemd."""

    def __init__(self) -> None:
        super().__init__("")
        self.sent: list[dict[str, str]] = []

    def send(self, **fields: str) -> bool:
        self.sent.append(fields)
        return True


def make_bot(tmp: Path, fake: FakeBackpack, cfg: GridConfig | None = None, **adapter: Any) -> Bot:
    adapter.setdefault("min_interval_s", 0)
    adapter.setdefault("markets_ttl_s", 0)  # re-read market rules on every reconcile
    adapter.setdefault("backoff_base_s", 0.01)
    adapter.setdefault("max_retries", 1)
    adapter.setdefault("timeout_s", 2.0)
    cfg = cfg or config(fake.base_url)
    ex = BackpackExchange(cfg.backpack, cfg.symbol, PUB, SECRET, **adapter)
    (tmp / "cfg").mkdir(exist_ok=True)
    epochs = iter(range(5, 1000))
    b = Bot("t", cfg, Store.open(tmp), ex, Notifier(""), tmp / "cfg", lambda: next(epochs))
    b.hold_base_s, b.retry_base_s = 0.05, 0.01
    return b


async def start(b: Bot) -> None:
    import asyncio as aio

    b._stop_event = aio.Event()
    assert await b.start_up()


def run(b: Bot, body: Callable[[], Any]) -> Any:
    async def main() -> Any:
        try:
            return await body()
        finally:
            await b.ex.close()
    return asyncio.run(main())


def reconcile_due(b: Bot) -> None:
    b._reconciled_at = -1e9


def venue_ids(fake: FakeBackpack) -> list[int]:
    return sorted(o.client_id for o in fake.open_orders())


def posts(fake: FakeBackpack) -> list[dict]:
    return [e["params"] for e in fake.log if e["method"] == "POST" and e["path"] == "/api/v1/order"]


def books_agree(b: Bot, fake: FakeBackpack) -> None:
    """The bot's live orders are exactly ours open on the venue, each once, at the prices it thinks."""
    live = b.state.live()
    venue = {o.client_id: o for o in fake.open_orders()}
    assert sorted(live) == sorted(venue), (sorted(live), sorted(venue))
    assert len(fake.open_orders()) == len(venue)  # no client id twice
    for cid, (_g, side, price, _rest) in live.items():
        assert venue[cid].price == price and venue[cid].side == ("Bid" if side is st.BUY else "Ask")
    rows = {r.client_id for r in b.store.orders(OPEN)}
    assert set(live) <= rows


# ------------------------------------------------------------------ the bot as a process

PY = sys.executable


def paper_config(**over) -> dict:
    cfg = {
        "$schema": "https://gridbot.invalid/schema/config.json",
        "exchange": "paper", "symbol": "SOL_USDC", "lower_price": "140", "upper_price": "160", "levels": 10,
        "qty_per_level": "0.5", "on_stop": "cancel",
        "paper": {"seed": 3, "price": {"start_price": "150", "volatility": 0.004, "interval_s": 0.02}},
    }
    cfg.update(over)
    return cfg


class BotProc:
    """One bot subprocess with its own config dir, state dir and notify socket."""

    def __init__(self, tmp: Path, name: str = "bot1", cfg: dict | None = None, watchdog_usec: int = 0) -> None:
        self.tmp, self.name = tmp, name
        self.cfg_dir, self.state_dir, self.figures_dir = tmp / "cfg", tmp / "state", tmp / "figures"
        self.cfg_dir.mkdir(exist_ok=True)
        if cfg is not None:
            self.write_config(cfg)
        self.sock_path = str(tmp / "notify.sock")
        if os.path.exists(self.sock_path):
            os.unlink(self.sock_path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.sock_path)
        self.sock.settimeout(0.1)
        self.messages: list[str] = []
        self.watchdog_usec = watchdog_usec
        self.proc: subprocess.Popen | None = None

    def write_config(self, cfg) -> None:
        text = cfg if isinstance(cfg, str) else json.dumps(cfg)
        (self.cfg_dir / f"{self.name}.json").write_text(text)

    def start(self, *extra: str) -> "BotProc":
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "STATE_DIRECTORY")}
        env.update(GRIDBOT_CONFIG_DIR=str(self.cfg_dir), STATE_DIRECTORY=str(self.state_dir),
                   NOTIFY_SOCKET=self.sock_path, PYTHONUNBUFFERED="1", GRIDBOT_FIGURES_DIR=str(self.figures_dir))
        self.messages = []
        if self.watchdog_usec:
            env["WATCHDOG_USEC"] = str(self.watchdog_usec)
        self.stderr = open(self.tmp / "stderr.log", "ab")
        self.proc = subprocess.Popen([PY, *extra, "-m", "gridbot.runner", self.name], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=self.stderr)
        return self

    def drain(self) -> None:
        while True:
            try:
                self.messages.append(self.sock.recv(65536).decode())
            except (socket.timeout, BlockingIOError):
                return

    def wait_for(self, needle: str, timeout: float = 15.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.drain()
            for m in self.messages:
                if needle in m:
                    return m
            if self.proc is not None and self.proc.poll() is not None:
                break
        raise AssertionError(f"{needle!r} not received; got {self.messages[-5:]}; stderr:\n{self.log()[-2000:]}")

    def stop(self, sig=signal.SIGTERM, timeout: float = 15.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self.stderr.close()
        return rc

    def log(self) -> str:
        return (self.tmp / "stderr.log").read_text(errors="replace")

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(str(self.state_dir / "gridbot.sqlite"))

    def kv(self, key: str):
        row = self.db().execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.sock.close()


@pytest.fixture
def bot(tmp_path):
    procs: list[BotProc] = []

    def make(**kw) -> BotProc:
        b = BotProc(tmp_path, **kw)
        procs.append(b)
        return b

    yield make
    for b in procs:
        b.close()



def runner_env(tmp_path: Path, base_url: str, creds: bytes | None, notify_socket: str | None = None,
               qty: str = "0.1") -> dict[str, str]:
    """Config bp1.json (4 levels, 140..160 on SOL_USDC, on the fake at base_url), the credential as
    systemd hands it over (none at all when creds is None) and a state directory, all under tmp_path."""
    (tmp_path / "cfg").mkdir(exist_ok=True)
    (tmp_path / "cfg" / "bp1.json").write_text(json.dumps({
        "exchange": "backpack", "symbol": "SOL_USDC", "lower_price": "140", "upper_price": "160", "levels": 4,
        "qty_per_level": qty, "backpack": {"base_url": base_url, "poll_interval_s": 0.2}}))
    run_dir = tmp_path / "run" / "gridbot@bp1.service"
    run_dir.mkdir(parents=True, exist_ok=True)
    if creds is not None:
        (run_dir / "backpack").write_bytes(creds)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRIDBOT_", "CREDENTIALS_", "STATE_DIR", "NOTIFY"))}
    env.update(GRIDBOT_CONFIG_DIR=str(tmp_path / "cfg"), GRIDBOT_STATE_DIR=str(tmp_path / "state"),
               CREDENTIALS_DIRECTORY=str(run_dir), PYTHONPATH=str(ROOT))
    if notify_socket:
        env["NOTIFY_SOCKET"] = notify_socket
    return env


def keys() -> bytes:
    return json.dumps({"api_key": PUB, "api_secret": SECRET}).encode()


def spawn_runner(tmp_path: Path, fake: FakeBackpack, sock_path: str | None = None) -> subprocess.Popen:
    """``python -m gridbot.runner bp1`` trading on the fake with good keys; output piped."""
    env = runner_env(tmp_path, fake.base_url, keys(), sock_path)
    return subprocess.Popen([sys.executable, "-m", "gridbot.runner", "bp1"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@contextlib.contextmanager
def reaped(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """The process never outlives the test: killed if the body leaves before it ended."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def sigterm(proc: subprocess.Popen, timeout: float = 30) -> str:
    """What systemd's stop does: SIGTERM, then wait; the process's output."""
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=timeout)[0]


class Sock:
    def __init__(self, path: str) -> None:
        import socket

        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(path)
        self.s.settimeout(0.2)
        self.msgs: list[str] = []

    def wait_for(self, text: str, timeout: float) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                self.msgs.append(self.s.recv(65536).decode())
            except OSError:
                continue
            if text in self.msgs[-1]:
                return self.msgs[-1]
        raise AssertionError(f"no {text!r} in {self.msgs}")
