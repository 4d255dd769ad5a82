"""The README's install path, followed command by command in a fresh container.

The commands are read from the README's ``install-path`` block, so the README cannot drift from
what works. Three kinds of step cannot run as written in an offline throw-away container and are
replaced by their closest check, nothing else:
- ``apt-get update`` is skipped and ``apt-get install -y PKGS`` becomes ``dpkg -s PKGS`` run on the
  host, whose /usr the container boots (its dpkg database is not in the volatile container): each
  prerequisite must be a real package name, installed here;
- ``git clone URL gridbot`` becomes a copy of this checkout, and ``git pull`` a no-op;
- ``install.sh`` gets ``--wheels`` (offline: the wheels this test run built).
Each step runs as root (``sudo`` is dropped); after the steps that change something, the test
checks what the README says they do.
"""
from __future__ import annotations

import re
import shlex
import subprocess

from gridbot_testsupport import sdbox

README = sdbox.ROOT / "README.md"


def install_path() -> list[str]:
    text = README.read_text()
    block = re.search(r"<!-- install-path: begin -->\s*```sh\n(.*?)```\s*<!-- install-path: end -->", text, re.S)
    assert block, "README has no install-path block"
    lines = [ln.split("  #")[0].strip() for ln in block.group(1).splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def adapt(cmd: str, wheels: str) -> str:
    words = shlex.split(cmd)
    if words[0] == "sudo":
        words = words[1:]
    if words[:2] == ["apt-get", "update"]:
        return "true"
    if words[:3] == ["apt-get", "install", "-y"]:
        r = subprocess.run(["dpkg", "-s", *words[3:]], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return "true"
    if words[:2] == ["git", "clone"]:
        dest = words[-1] if len(words) > 3 else "gridbot"
        root = shlex.quote(str(sdbox.ROOT))
        return (f"mkdir -p {dest} && tar -C {root} --exclude=.venv --exclude=.cache --exclude=.git "
                f"--exclude=__pycache__ -cf - . | tar -C {dest} -xf -")
    if words[:2] == ["git", "pull"]:
        return "true"
    if words[0].endswith("packaging/install.sh"):
        words += ["--wheels", wheels]
    return shlex.join(words)


def test_readme_install_path_from_zero(wheels):
    steps = install_path()
    assert any("apt-get install" in s for s in steps) and any(s.startswith("git clone") for s in steps)
    for pkg in ("python3-venv", "gcc", "libsystemd-dev", "pkg-config"):
        assert pkg in " ".join(steps), pkg
    box = sdbox.Box().boot()
    try:
        box.sh("useradd -m alice", check=True)  # the operator named in step 6
        cwd = "/root"
        seen = []
        for step in steps:
            cmd = adapt(step, str(wheels))
            if cmd.startswith("cd "):
                cwd = f"{cwd}/{cmd[3:].strip()}"
                continue
            r = box.sh(f"cd {shlex.quote(cwd)} && {cmd}", timeout=300)
            assert r.returncode == 0, (step, cmd, r.stdout, r.stderr)
            seen.append(step)
            check_after(box, step, r)
        assert any("uninstall.sh" in s for s in seen) and len(seen) == len([s for s in steps if not s.startswith("cd ")])
    finally:
        box.poweroff()


def check_after(box: sdbox.Box, step: str, r) -> None:
    """What the README says each step does, checked right after it."""
    if step == "sudo ./packaging/install.sh":
        assert box.run(["test", "-x", "/usr/local/bin/gridbot"]).returncode == 0
        # the examples' "$schema" resolves to the schema install wrote
        schema = box.run(["cat", "/usr/local/share/gridbot/config.schema.json"], check=True).stdout
        assert '"lower_price"' in schema
        ref = box.run(["/opt/gridbot/bin/python", "-c", "import json,sys; print(json.load(open(sys.argv[1]))['$schema'])",
                       "/root/gridbot/config/bp_sol_01.json"], check=True).stdout.strip()
        assert ref == "file:///usr/local/share/gridbot/config.schema.json"
    elif step.startswith("gridbot validate"):
        assert "sol1: ok" in r.stdout
    elif step.startswith("sudo gridbot start"):
        assert box.run(["systemctl", "is-active", "gridbot@sol1.service"]).stdout.strip() == "active"
    elif step.startswith("gridbot status"):
        assert "active (running)" in r.stdout
    elif step.startswith("sudo gridbot enable"):
        assert box.run(["systemctl", "is-enabled", "gridbot@sol1.service"]).stdout.strip() == "enabled"
        assert box.run(["test", "-L", "/etc/systemd/system/multi-user.target.wants/gridbot@sol1.service"]).returncode == 0
    elif step.startswith("sudo usermod"):
        # alice, an operator now: restarts a bot and reads its logs without sudo
        assert box.gridbot("restart", "sol1", user="alice").returncode == 0
        assert "sol1" in box.gridbot("logs", "sol1", "-n", "20", user="alice", check=True).stdout
    elif step.startswith("sudo gridbot restart --all"):
        assert "sol1: restarted" in r.stdout
    elif step.startswith("sudo gridbot rm"):
        assert box.run(["test", "-e", "/etc/gridbot/sol1.json"]).returncode != 0
        assert box.run(["systemctl", "is-active", "gridbot@sol1.service"]).stdout.strip() != "active"
    elif step.startswith("sudo ./packaging/uninstall.sh"):
        for gone in ("/opt/gridbot", "/usr/local/bin/gridbot", "/usr/local/share/gridbot",
                     "/etc/systemd/system/gridbot@.service"):
            assert box.run(["test", "-e", gone]).returncode != 0, gone
