"""Test support shared by tests/, scripts/ and bench/: a throw-away real systemd (``sdbox``), the fake
Backpack server (``fake_backpack``, its engine ``_fake_account``) and a headless-Chromium page loader
(``browser``).

Importable as ``gridbot_testsupport`` with no path edits in any script: pytest adds ``tests/`` through the
``pythonpath`` option in pyproject.toml; scripts/setup.sh puts a ``.pth`` file naming ``tests/`` into the
venv, for ``scripts/demo.py`` and ``bench/run.py``. ``fake_backpack.py`` also runs standalone by path
(``python tests/gridbot_testsupport/fake_backpack.py --port P``), as the e2e tests do inside the container.
"""
from __future__ import annotations

import time
from typing import Callable


def wait_until(cond: Callable[[], object], timeout: float = 20.0, every: float = 0.1) -> bool:
    """Poll ``cond`` until it is true (True) or ``timeout`` seconds have passed (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(every)
    return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing holds right now (the containers share the host's network,
    so a fixed port could collide with another run)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
