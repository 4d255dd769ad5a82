"""`gridbot enable` survives a power-off: a second boot with /etc kept starts the instance."""
from __future__ import annotations

import json

from gridbot_testsupport import sdbox

from .conftest import paper_config


def test_enabled_instance_is_active_after_reboot(tmp_path, wheels):
    keep = {d: tmp_path / d for d in ("system", "gridbot", "sysusers", "opt", "polkit", "tmpfiles")}
    for p in keep.values():
        p.mkdir()
    # the first boot on an empty /etc/systemd/system runs preset-all into it: never let
    # systemd-networkd loose on the network the container shares with the host
    for unit in ("systemd-networkd.service", "systemd-networkd.socket", "systemd-networkd-wait-online.service"):
        (keep["system"] / unit).symlink_to("/dev/null")
    binds = [(keep["system"], "/etc/systemd/system"), (keep["gridbot"], "/etc/gridbot"),
             (keep["sysusers"], "/etc/sysusers.d"), (keep["opt"], "/opt/gridbot"),
             (keep["polkit"], "/etc/polkit-1/rules.d"), (keep["tmpfiles"], "/etc/tmpfiles.d")]
    first = sdbox.Box(binds=binds, accounting=False).boot()
    try:
        first.install(wheels)
        first.put("/etc/gridbot/boot_a.json", paper_config())
        first.put("/etc/gridbot/boot_b.json", paper_config(low=1000, high=2000))
        r = first.gridbot("enable", "boot_a")
        assert r.returncode == 0, r.stderr
        assert first.run(["systemctl", "is-active", "gridbot@boot_a.service"]).stdout.strip() == "inactive"
    finally:
        first.poweroff()
    assert (keep["system"] / "multi-user.target.wants" / "gridbot@boot_a.service").is_symlink()

    second = sdbox.Box(binds=binds, accounting=False).boot()
    try:
        # /usr/local is a throw-away overlay: link the CLI again (the venv in /opt survived)
        second.sh("ln -sfn /opt/gridbot/bin/gridbot /usr/local/bin/gridbot", check=True)
        # is-system-running says "running" only once boot jobs are done, READY=1 included
        assert second.run(["systemctl", "is-active", "gridbot@boot_a.service"]).stdout.strip() == "active"
        assert second.run(["systemctl", "is-active", "gridbot@boot_b.service"]).stdout.strip() == "inactive"
        r = second.gridbot("list", "--json", check=True)
        rows = {x["name"]: x for x in json.loads(r.stdout)}
        assert rows["boot_a"]["active_state"] == "active" and rows["boot_a"]["enabled"] is True
        assert rows["boot_b"]["enabled"] is False
    finally:
        second.poweroff()
