"""CLI behaviour that needs no systemd: completion, validation output, usage errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

GOOD = {"symbol": "SOL_USDC", "lower_price": 100, "upper_price": 200, "levels": 10, "qty_per_level": 0.1}
GRIDBOT = [sys.executable, "-m", "gridbot"]


def run(args, cfg_dir: Path, **env):
    e = {**os.environ, "GRIDBOT_CONFIG_DIR": str(cfg_dir), **env}
    e.pop("CONFIGURATION_DIRECTORY", None)
    return subprocess.run(GRIDBOT + args, capture_output=True, text=True, env=e, timeout=60)


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
