"""The CLI as a process, no systemd needed: completion, validate's output and exit codes, usage errors,
--user anywhere, secrets never echoed, the progress line."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gridbot.cli import _hoist_user

from .conftest import GOOD, GRIDBOT, run


def test_shell_completion_offers_instance_names(tmp_path):
    for n in ("bp_sol_01", "bp_eth_02", "other"):
        (tmp_path / f"{n}.json").write_text(json.dumps(GOOD))
    r = run([], tmp_path, _GRIDBOT_COMPLETE="complete_bash", COMP_WORDS="gridbot status bp_", COMP_CWORD="2")
    assert r.returncode == 0, r.stderr
    assert set(r.stdout.split()) == {"bp_sol_01", "bp_eth_02"}


def test_validate_reports_each_config_and_exits_6(tmp_path):
    (tmp_path / "good.json").write_text(json.dumps(GOOD))
    (tmp_path / "bad.json").write_text(json.dumps({**GOOD, "levels": 1}))
    r = run(["validate", "good", "bad", "--json"], tmp_path)
    assert r.returncode == 6
    data = json.loads(r.stdout)
    assert data["good"] == {"valid": True, "error": None}
    assert data["bad"]["valid"] is False and "levels" in data["bad"]["error"]
    r = run(["validate", "--all"], tmp_path)
    assert r.returncode == 6 and "good: ok" in r.stdout and r.stderr.count("gridbot: error:") == 1


def test_validate_all_on_an_empty_directory_says_so(tmp_path):
    r = run(["validate", "--all"], tmp_path)
    assert r.returncode == 2 and "no configs in" in r.stderr


def test_schema_is_json_schema(tmp_path):
    r = run(["schema"], tmp_path)
    schema = json.loads(r.stdout)
    assert schema["additionalProperties"] is False and "lower_price" in schema["properties"]


def test_no_systemd_is_one_clear_line(tmp_path):
    r = run(["list"], tmp_path, DBUS_SYSTEM_BUS_ADDRESS="unix:path=/nonexistent/bus")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("gridbot: error:") and len(r.stderr.strip().splitlines()) == 1


def test_validate_cli_reports_all_errors_in_one_line(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({**GOOD, "level": 3, "paper": {"start_price": 1}}))
    r = run(["validate", "a"], tmp_path)
    assert r.returncode == 6
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "did you mean levels?" in lines[0] and "paper.price.start_price" in lines[0]


def test_validate_unknown_instance_is_5_and_a_missing_dash_c_is_usage(tmp_path):
    (tmp_path / "good.json").write_text(json.dumps({**GOOD, "paper": {"price": {"start_price": 150}}}))
    r = run(["validate", "good", "ghost"], tmp_path)
    assert r.returncode == 5 and "good: ok" in r.stdout and "no such instance 'ghost'" in r.stderr
    r = run(["validate", "-c", str(tmp_path / "nothere.json")], tmp_path)
    assert r.returncode == 2 and "no such config file" in r.stderr


def test_validate_infeasible_is_6(tmp_path):
    (tmp_path / "btc.json").write_text(json.dumps({**GOOD, "symbol": "BTC_USDC", "lower_price": 60000,
                                                   "upper_price": 70000, "qty_per_level": "0.001",
                                                   "paper": {"price": {"start_price": 65000}}}))
    r = run(["validate", "btc"], tmp_path)
    assert r.returncode == 6 and "below the market minimum 0.01" in r.stderr


# -- --user anywhere -----------------------------------------------------------------------------
@pytest.mark.parametrize("argv,want", [
    (["list", "--user"], ["--user", "list"]),
    (["--user", "list"], ["--user", "list"]),
    (["start", "a", "--user", "b"], ["--user", "start", "a", "b"]),
    (["stop", "--", "--user"], ["stop", "--", "--user"]),
    (["status", "x"], ["status", "x"]),
])
def test_user_flag_is_hoisted(argv, want):
    assert _hoist_user(argv) == want


def test_user_after_the_command_and_env_default_reach_the_user_config_dir(tmp_path):
    home = tmp_path / "home"
    (home / ".config" / "gridbot").mkdir(parents=True)
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    e = {**os.environ, **env}
    e.pop("GRIDBOT_CONFIG_DIR", None)
    e.pop("CONFIGURATION_DIRECTORY", None)
    for args, extra in ((["validate", "--all", "--user"], {}), (["validate", "--all"], {"GRIDBOT_USER": "1"})):
        r = subprocess.run(GRIDBOT + args, capture_output=True, text=True, env={**e, **extra}, timeout=60)
        assert r.returncode == 2 and str(home / ".config" / "gridbot") in r.stderr, r.stderr


SECRET = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="


@pytest.mark.parametrize("args", [
    ["credentials", "set", "bp_sol_01", SECRET], ["credentials", "set", SECRET], ["start", SECRET],
    ["start", "--timeout", SECRET, "x"], ["stop", f"--api-secret={SECRET}"], [SECRET], ["validate", "x", SECRET],
    ["logs", "-n", SECRET]])
def test_a_secret_on_the_command_line_is_never_echoed(tmp_path, args):
    env = {**os.environ, "GRIDBOT_CONFIG_DIR": str(tmp_path), "DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent"}
    r = subprocess.run([sys.executable, "-m", "gridbot", *args], capture_output=True, text=True, env=env, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    for piece in (SECRET, SECRET[:20], SECRET[8:30]):
        assert piece not in r.stdout + r.stderr, (args, r.stderr)
    assert r.stderr.startswith("gridbot: error:") and len(r.stderr.strip().splitlines()) == 1, r.stderr


# -- progress line ---------------------------------------------------------------------------------
class _Tty:
    def __init__(self, tty: bool) -> None:
        self.tty, self.text = tty, ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, s: str) -> None:
        self.text += s

    def flush(self) -> None:
        pass


def test_progress_line_only_on_a_terminal_and_cleared_before_results(monkeypatch):
    from gridbot.cli import commands

    err = _Tty(True)
    monkeypatch.setattr(sys, "stderr", err)
    p = commands._Progress("starting")
    p.waiting(["a", "b"], 0.5)  # under a second: nothing yet
    assert err.text == ""
    p.waiting(["a", "b", "c", "d"], 12.2)
    assert "starting: waiting for a, b, c and 1 more (12s)" in err.text
    p.clear()
    assert err.text.endswith("\r\033[K") and not p.shown
    quiet = _Tty(False)
    monkeypatch.setattr(sys, "stderr", quiet)
    q = commands._Progress("starting")
    q.waiting(["a"], 30)
    q.clear()
    assert quiet.text == ""
