"""`gridbot --user`: the same commands against a per-user manager, no root anywhere."""
from __future__ import annotations

import json

from .conftest import paper_config


def test_user_mode_start_list_stop(box, wheels):
    box.sh("useradd -m solo && loginctl enable-linger solo", check=True)
    uid = box.run(["id", "-u", "solo"], check=True).stdout.strip()
    env = {"HOME": "/home/solo", "XDG_RUNTIME_DIR": f"/run/user/{uid}", "PATH": "/home/solo/.local/bin:/usr/bin:/bin"}
    box.sh(f"for i in $(seq 50); do [ -S /run/user/{uid}/bus ] && break; sleep 0.1; done; test -S /run/user/{uid}/bus", check=True)
    box.run([f"{box_root()}/packaging/install-user.sh", "--wheels", str(wheels)], user="solo", env=env, check=True, timeout=300)
    box.run(["bash", "-c", "mkdir -p ~/.config/gridbot && cat > ~/.config/gridbot/mine.json"], user="solo", env=env,
            input=paper_config(), check=True)
    gb = lambda *a: box.run(["gridbot", "--user", *a], user="solo", env=env)  # noqa: E731
    r = gb("start", "mine")
    assert r.returncode == 0, r.stderr
    rows = {x["name"]: x for x in json.loads(gb("list", "--json").stdout)}
    assert rows["mine"]["active_state"] == "active"
    assert gb("status", "mine").returncode == 0
    assert "mine" in gb("logs", "mine", "-n", "20").stdout
    # --user after the command, and GRIDBOT_USER=1 as the default, reach the same per-user manager
    r = box.run(["gridbot", "status", "mine", "--user"], user="solo", env=env)
    assert r.returncode == 0 and "gridbot@mine.service" in r.stdout, r.stderr
    r = box.run(["gridbot", "status", "mine"], user="solo", env={**env, "GRIDBOT_USER": "1"})
    assert r.returncode == 0, r.stderr
    r = box.run(["gridbot", "status", "mine"], user="solo", env=env)  # the system manager has no 'mine'
    assert r.returncode == 5
    # the units are made from the system ones (packaging/user_units.py): OnFailure= reaches a user alert unit
    show = lambda unit, prop: box.run(["systemctl", "--user", "show", unit, "-P", prop], user="solo",  # noqa: E731
                                      env=env).stdout.strip()
    assert show("gridbot@mine.service", "OnFailure") == "gridbot-alert@mine.service"
    assert show("gridbot-alert@mine.service", "LoadState") == "loaded"
    assert gb("stop", "mine").returncode == 0
    assert gb("status", "mine").returncode == 3
    # the system manager is not touched
    assert box.run(["systemctl", "is-active", "gridbot@mine.service"]).stdout.strip() == "inactive"


def box_root() -> str:
    from gridbot_testsupport import sdbox
    return str(sdbox.ROOT)
