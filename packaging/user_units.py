"""The per-user manager's units, made from the system units in systemd/ (packaging/install-user.sh).

    python3 packaging/user_units.py SRC_DIR OUT_DIR [--prefix VENV]

The system units are the one source: each user unit is its system unit with what a user manager
cannot do taken out (below, with the reason), the venv path swapped, multi-user.target read as
default.target, and everything else kept as it is, OnFailure= included. A setting added to a system
unit reaches the user unit at the next install-user.sh; tests/unit/test_user_units.py checks the
result. Standard library only: it runs before gridbot is importable.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

UNITS = ("gridbot@.service", "gridbot.target", "gridbot-alert@.service")
SYSTEM_PREFIX = "/opt/gridbot"
DEFAULT_PREFIX = "%h/.local/share/gridbot/venv"

# settings a user manager cannot honour, and why
DROP = {
    # identity: every service of a user manager runs as that user
    "DynamicUser", "User", "Group", "SupplementaryGroups", "RemoveIPC",
    # capabilities: a user manager holds none to grant or drop (the start would fail: 218/CAPABILITIES)
    "AmbientCapabilities", "CapabilityBoundingSet",
    # cgroup BPF (IP firewall, device policy): needs privileges a user manager lacks; it ignores them
    "IPAddressAllow", "IPAddressDeny", "DevicePolicy",
    # mount and user namespaces: a user manager needs unprivileged user namespaces for these, which
    # many hosts and containers refuse (the start would fail); the state is in the user's home anyway
    "PrivateDevices", "PrivateMounts", "PrivateTmp", "PrivateUsers", "ProcSubset", "ProtectClock",
    "ProtectControlGroups", "ProtectHome", "ProtectHostname", "ProtectKernelLogs", "ProtectKernelModules",
    "ProtectKernelTunables", "ProtectProc", "ProtectSystem",
    # the system's shared directories (/var/lib/gridbot/.accounts, /run/gridbot/figures): a user's
    # bots keep theirs under ~/.local/state/gridbot and $XDG_RUNTIME_DIR/gridbot
    "ReadWritePaths",
}
# units only the system manager has (in After=, Wants=, ... lists)
SYSTEM_ONLY_UNITS = {"network-online.target"}
# [Install] targets of the system manager and the user manager's counterpart
TARGETS = {"multi-user.target": "default.target"}
# settings that reach the user's own gridbot: the alert asks the user manager about the instance
ADD = {"gridbot-alert@.service": ["Environment=GRIDBOT_USER=1"]}


def user_unit(name: str, text: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The user manager's copy of the system unit ``name`` whose text is ``text``."""
    out = [f"# {name} for the per-user manager (`gridbot --user ...`), made by packaging/install-user.sh",
           f"# from systemd/{name} (packaging/user_units.py): edit that one, not this copy."]
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue  # the comments speak of the system install
        if line.startswith("["):
            if section == "[Service]":
                out += ADD.get(name, [])
            section = line
            out += ["", line] if len(out) > 2 else [line]
            continue
        key, _, value = line.partition("=")
        if key in DROP:
            continue
        if key == "Description":
            value += " (user)"
        if key in ("After", "Before", "Wants", "Requires", "BindsTo", "WantedBy", "RequiredBy", "PartOf"):
            units = [TARGETS.get(u, u) for u in value.split() if u not in SYSTEM_ONLY_UNITS]
            if not units:
                continue
            value = " ".join(units)
        value = value.replace(SYSTEM_PREFIX + "/", prefix + "/")
        out.append(f"{key}={value}")
    if section == "[Service]":
        out += ADD.get(name, [])
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", type=Path, help="the system units (systemd/)")
    ap.add_argument("out", type=Path, help="where the user units go (~/.config/systemd/user)")
    ap.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"the user's venv (default {DEFAULT_PREFIX})")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in UNITS:
        text = user_unit(name, (args.src / name).read_text(), args.prefix)
        tmp = args.out / f".{name}.tmp"
        tmp.write_text(text)
        tmp.chmod(0o644)
        tmp.replace(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
