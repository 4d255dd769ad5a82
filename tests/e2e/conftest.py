"""One booted container for the e2e session, with gridbot installed by packaging/install.sh."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from gridbot_testsupport import sdbox


def paper_config(low: float = 100, high: float = 200, levels: int = 10, **extra) -> str:
    cfg = {"symbol": "SOL_USDC", "lower_price": low, "upper_price": high, "levels": levels, "qty_per_level": 0.1,
           "paper": {"price": {"start_price": (low + high) / 2, "interval_s": 0.5}}}
    cfg.update(extra)
    return json.dumps(cfg)


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
