"""packaging/user_units.py: the per-user units are the system units minus what a user manager cannot do.
(tests/e2e/test_user_mode.py installs them with install-user.sh and runs a bot under a user manager.)"""
from __future__ import annotations

import importlib.util
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "packaging" / "user_units.py"
_spec = importlib.util.spec_from_file_location("user_units", SCRIPT)
uu = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(uu)

# what the hand-written user copy of gridbot@.service had before it was generated: still all there
HAND_COPY = {"Description", "Documentation", "PartOf", "Wants", "After", "StartLimitIntervalSec", "StartLimitBurst",
             "ConfigurationDirectory", "Environment", "ExecReload", "ExecStart", "LockPersonality", "NoNewPrivileges",
             "LimitCORE", "NotifyAccess", "Restart", "RestartPreventExitStatus", "RestartSec",
             "RestrictAddressFamilies", "RestrictRealtime", "StateDirectory", "StateDirectoryMode", "SyslogIdentifier",
             "SystemCallArchitectures", "TimeoutStopSec", "Type", "UMask", "WatchdogSec", "WantedBy"}


def settings(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) of every setting, in order."""
    out, section = [], ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            out.append((section, key, value))
    return out


def generated(name: str, prefix: str = uu.DEFAULT_PREFIX) -> str:
    return uu.user_unit(name, (ROOT / "systemd" / name).read_text(), prefix)


@pytest.mark.parametrize("name", uu.UNITS)
def test_every_system_setting_is_kept_unless_a_user_manager_cannot_do_it(name):
    system, user = settings((ROOT / "systemd" / name).read_text()), settings(generated(name))
    for section, key, value in system:
        if key in uu.DROP:
            assert key not in {k for _s, k, _v in user}, key
            continue
        units = [u for u in value.split() if u not in uu.SYSTEM_ONLY_UNITS]
        if key in ("After", "Wants") and not units:
            continue
        if key == "Description":
            value += " (user)"
        elif key in ("WantedBy", "PartOf", "After", "Wants"):
            value = " ".join(uu.TARGETS.get(u, u) for u in units)
        value = value.replace("/opt/gridbot/", uu.DEFAULT_PREFIX + "/")
        assert (section, key, value) in user, (section, key, value)
    added = [s for s in user if s[1] == "Environment" and s[2] == "GRIDBOT_USER=1"]
    assert len(user) == len([s for s in system if s[1] not in uu.DROP and not (
        s[1] in ("After", "Wants") and set(s[2].split()) <= uu.SYSTEM_ONLY_UNITS)]) + len(added)


def test_the_bot_unit_keeps_on_failure_and_everything_the_hand_copy_had():
    user = settings(generated("gridbot@.service"))
    keys = {k for _s, k, _v in user}
    assert ("[Unit]", "OnFailure", "gridbot-alert@%i.service") in user  # the drift this replaces
    assert HAND_COPY <= keys, HAND_COPY - keys
    for gone in ("DynamicUser", "User", "Group", "ReadWritePaths", "CapabilityBoundingSet", "ProtectSystem",
                 "PrivateUsers", "IPAddressDeny"):
        assert gone not in keys, gone
    text = generated("gridbot@.service")
    assert "network-online.target" not in text and "/opt/gridbot" not in text and "multi-user" not in text
    assert ("[Service]", "ExecStart", "%h/.local/share/gridbot/venv/bin/gridbot run %i") in user
    assert ("[Install]", "WantedBy", "default.target gridbot.target") in user
    assert ("[Install]", "WantedBy", "default.target") in settings(generated("gridbot.target"))


def test_the_alert_unit_asks_the_user_manager():
    user = settings(generated("gridbot-alert@.service", "/home/u/.local/share/gridbot/venv"))
    assert ("[Service]", "Environment", "GRIDBOT_USER=1") in user
    assert ("[Service]", "ExecCondition", "+/home/u/.local/share/gridbot/venv/bin/python -m gridbot.alert --check %i"
            ) in user
    assert "DynamicUser" not in {k for _s, k, _v in user}


def test_the_script_writes_the_three_units_0644(tmp_path):
    out = tmp_path / "units"
    r = subprocess.run([sys.executable, str(SCRIPT), str(ROOT / "systemd"), str(out), "--prefix", "/v"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(uu.UNITS)  # no temp file left
    for name in uu.UNITS:
        p = out / name
        assert stat.S_IMODE(p.stat().st_mode) == 0o644
        assert p.read_text() == generated(name, "/v")
        assert p.read_text().startswith(f"# {name} for the per-user manager")
