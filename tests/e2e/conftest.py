"""One booted container for the e2e session, with gridbot installed by packaging/install.sh."""
from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gridbot_testsupport import sdbox

FAKE_BACKPACK = sdbox.ROOT / "tests" / "gridbot_testsupport" / "fake_backpack.py"


def paper_config(low: float = 100, high: float = 200, levels: int = 10, **extra) -> str:
    cfg = {"symbol": "SOL_USDC", "lower_price": low, "upper_price": high, "levels": levels, "qty_per_level": 0.1,
           "paper": {"price": {"start_price": (low + high) / 2, "interval_s": 0.5}}}
    cfg.update(extra)
    return json.dumps(cfg)


def wait_for(pred, timeout=20.0, every=0.2, what="condition"):
    """pred()'s first true value, asked every ``every`` s; an AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout} s")
        time.sleep(every)


def keypair() -> tuple[str, str]:
    """A fresh ED25519 API key and secret, base64, as Backpack hands them out."""
    priv = Ed25519PrivateKey.generate()
    pub = priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(pub).decode(), base64.b64encode(priv.private_bytes_raw()).decode()


def start_fake_backpack(box, unit: str, port: int, api_key: str, state: str) -> None:
    """The fake Backpack server in the box as the transient unit ``unit`` on 127.0.0.1:``port`` (the
    container shares the host's network), one account (150 USDC per SOL; 10 SOL, 10000 USDC) kept in
    the file ``state``; back once it listens. The caller stops ``unit``."""
    box.put(state, json.dumps({"price": "150", "balances": {"SOL": "10", "USDC": "10000"}}))
    box.run(["systemd-run", f"--unit={unit}", "--property=Environment=PYTHONDONTWRITEBYTECODE=1",
             "/opt/gridbot/bin/python", str(FAKE_BACKPACK), "--port", str(port), "--api-key", api_key,
             "--state", state], check=True)
    wait_for(lambda: box.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"]).returncode == 0, timeout=20,
             every=0.1, what=f"the fake Backpack listening on {port}")


@pytest.fixture(scope="session")
def wheels() -> Path:
    return sdbox.build_wheels()


@pytest.fixture(scope="session")
def box(wheels, tmp_path_factory):
    """Failing to boot is a test failure (never a skip): CI must prove the real-systemd path.

    /var/lib/systemd sits on a real disk, as on a host: systemd-creds refuses to create its host
    key on the container's tmpfs, and live instances' keys are encrypted with it.
    """
    varlib = tmp_path_factory.mktemp("var-lib-systemd")
    b = sdbox.Box(binds=[(str(varlib), "/var/lib/systemd")]).boot()
    try:
        b.install(wheels)
        b.sh("useradd -m -G gridbot-ops op && useradd -m outsider", check=True)
        yield b
    finally:
        b.poweroff()


@pytest.fixture
def make_instance(box):
    """Write /etc/gridbot/NAME.json inside the box; stop and forget the instance afterwards."""
    made = []

    def make(name: str, text: str | None = None, **kw) -> str:
        box.put(f"/etc/gridbot/{name}.json", text if text is not None else paper_config(**kw))
        made.append(name)
        return name

    yield make
    for n in made:
        box.sh(f"systemctl stop gridbot@{n}.service; systemctl disable gridbot@{n}.service; "
               f"systemctl reset-failed gridbot@{n}.service; rm -f /etc/gridbot/{n}.json", timeout=60)
