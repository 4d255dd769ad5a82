"""Hostile input gets one clear line, a non-zero exit, no traceback, and changes nothing (checked)."""
from __future__ import annotations

import json
import subprocess

import pytest

from .conftest import paper_config

BAD_NAMES = ["a/b", "../etc", "..", ".", "a b", " lead", "tab\tx", "x@y", "x*", "x?", "[x]", "x\\y", "a;rm -rf /",
             "$(id)", "`id`", "", "x" * 65, "-flag", "name.", ".hidden", "naïve", "x\ny", "gridbot@x.service", "x:y",
             "a..b", "a/../../b"]


def snapshot(box) -> str:
    """What must not change: units loaded/active, unit files, and the config directory."""
    return box.sh("systemctl list-units --all --plain --no-legend 'gridbot*' | sort; "
                  "ls -la /etc/systemd/system /etc/gridbot | sort; find /etc/systemd/system -name 'gridbot*' | sort",
                  check=True).stdout


def assert_clean_error(r, code=None):
    assert r.returncode != 0, r.stdout
    if code is not None:
        assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    err = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(err) >= 1
    assert err[-1].startswith(("gridbot: error:", "Error", "Usage", "│", "╰")) or "error" in err[-1].lower(), r.stderr


VERBS = ("start", "stop", "restart", "status", "enable", "disable", "info", "logs", "validate")


def test_bad_names_rejected_before_dbus(box):
    """Every hostile name x every verb, in one container shell: exit 2, one clean line, nothing changed."""
    before = snapshot(box)
    script = ("import json, subprocess, sys\n"
              "names, verbs = json.loads(sys.stdin.read())\n"
              "out = []\n"
              "for n in names:\n"
              "    for v in verbs:\n"
              "        r = subprocess.run(['/usr/local/bin/gridbot', v, '--', n], capture_output=True, text=True)\n"
              "        out.append([n, v, r.returncode, r.stdout, r.stderr])\n"
              "print(json.dumps(out))\n")
    res = box.run(["/opt/gridbot/bin/python", "-c", script], input=json.dumps([BAD_NAMES, VERBS]), check=True, timeout=600)
    results = json.loads(res.stdout)
    assert len(results) == len(BAD_NAMES) * len(VERBS)
    for name, verb, code, out, err in results:
        r = subprocess.CompletedProcess([verb, name], code, out, err)
        assert_clean_error(r, 2)
        assert any(s in err for s in ("invalid instance name", "is empty", "longer than")), (name, verb, err)
        assert len(err.strip().splitlines()) == 1, (name, verb, err)
    assert snapshot(box) == before


def test_bad_dash_c_path(box):
    before = snapshot(box)
    r = box.gridbot("start", "-c", "/root/not-json.txt")
    assert_clean_error(r, 2)
    r = box.gridbot("start", "-c", "/nonexistent/cfg.json")
    assert_clean_error(r, 2)
    assert "no such config file" in r.stderr
    assert snapshot(box) == before


CONFIGS = {
    "malformed": ("{not json", "malformed JSON"),
    "unknown_key": (paper_config(uper_price=3), "uper_price: unknown key"),
    "wrong_type": (paper_config(levels="many"), "levels"),
    "nan": ('{"symbol":"SOL_USDC","lower_price":NaN,"upper_price":2,"levels":5,"qty_per_level":1}', ""),
    "inverted": (paper_config(low=200, high=100), "lower_price"),
    "zero_levels": (paper_config(levels=0), "levels"),
    "negative_size": (paper_config(qty_per_level=-1), "qty_per_level"),
    "fee_eats_step": (paper_config(low=100, high=101, levels=50), "round-trip fee"),
    "empty": ("", "malformed JSON"),
    "array": ("[]", ""),
}


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_bad_configs_fail_validate_and_start(box, kind):
    text, needle = CONFIGS[kind]
    name = f"badcfg_{kind}"
    box.put(f"/etc/gridbot/{name}.json", text)
    try:
        before = snapshot(box)
        for verb in ("validate", "start"):
            r = box.gridbot(verb, name)
            assert_clean_error(r, 6)
            assert f"{name}.json" in r.stderr and needle in r.stderr
        assert snapshot(box) == before
        assert box.run(["systemctl", "is-active", f"gridbot@{name}.service"]).stdout.strip() == "inactive"
    finally:
        box.sh(f"rm -f /etc/gridbot/{name}.json")


UNKNOWN_VERBS = (["start"], ["stop"], ["restart"], ["reload"], ["status"], ["info"], ["logs"], ["logs", "-f"],
                 ["validate"], ["enable"], ["disable"], ["rm", "--yes"], ["rm", "--purge", "--yes"])


def test_unknown_instance_is_5_on_every_verb(box):
    """The same exit code, 5, for "no such instance" on every verb; one line; nothing changed.
    `logs` in particular must not exit 0 with journalctl's '-- No entries --'."""
    before = snapshot(box)
    for verb in UNKNOWN_VERBS:
        r = box.gridbot(*verb, "ghost_instance", timeout=30)
        assert_clean_error(r, 5)
        assert "no such instance 'ghost_instance'" in r.stderr, (verb, r.stderr)
        assert "No entries" not in r.stdout
        assert len(r.stderr.strip().splitlines()) == 1, (verb, r.stderr)
    assert snapshot(box) == before


def test_cli_misuse(box):
    for args in (["stop"], ["stop", "--all", "x"], ["status"], ["frobnicate"], ["start", "--timeout", "soon", "x"],
                 ["logs", "-n", "-5"], ["cleanup", "--yes", "extra"]):
        r = box.gridbot(*args)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert "Traceback" not in r.stderr


def test_no_systemd_reachable(box):
    r = box.gridbot("list", env={"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent/bus"})
    assert_clean_error(r)
    assert "cannot reach systemd" in r.stderr
