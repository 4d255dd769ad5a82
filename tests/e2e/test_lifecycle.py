"""The CLI against a real systemd: start, stop, restart, list, status, stop-all, cleanup, logs, stats."""
from __future__ import annotations

import json

from .conftest import paper_config, wait_for


def active(box, name) -> str:
    return box.run(["systemctl", "is-active", f"gridbot@{name}.service"]).stdout.strip()


def listing(box) -> dict:
    r = box.gridbot("list", "--json", check=True)
    return {row["name"]: row for row in json.loads(r.stdout)}


def test_two_instances_side_by_side_and_stop_one(box, make_instance):
    make_instance("duo_a", low=100, high=200)
    make_instance("duo_b", low=1000, high=2000)
    r = box.gridbot("start", "duo_a", "duo_b")
    assert r.returncode == 0, r.stderr
    assert "duo_a: started" in r.stdout and "duo_b: started" in r.stdout
    assert active(box, "duo_a") == "active" and active(box, "duo_b") == "active"
    rows = listing(box)
    assert rows["duo_a"]["active_state"] == "active" and rows["duo_a"]["main_pid"] > 0
    assert rows["duo_b"]["main_pid"] not in (None, rows["duo_a"]["main_pid"])
    r = box.gridbot("stop", "duo_a", check=True)
    assert "duo_a: stopped" in r.stdout
    assert active(box, "duo_a") == "inactive"
    assert active(box, "duo_b") == "active"


def test_status_text_and_exit_codes(box, make_instance):
    make_instance("st_one")
    box.gridbot("start", "st_one", check=True)
    r = box.gridbot("status", "st_one")
    assert r.returncode == 0, r.stderr
    assert "active (running)" in r.stdout and "pid:" in r.stdout
    data = json.loads(box.gridbot("status", "st_one", "--json").stdout)
    assert data["active_state"] == "active" and data["main_pid"] > 0 and data["enabled"] is False
    wait_for(lambda: json.loads(box.gridbot("status", "st_one", "--json").stdout)["status_text"])
    box.gridbot("stop", "st_one", check=True)
    r = box.gridbot("status", "st_one")
    assert r.returncode == 3 and "inactive" in r.stdout
    r = box.gridbot("status", "never_configured")
    assert r.returncode == 5 and "no such instance" in r.stderr


def test_systemctl_start_without_the_cli(box, make_instance):
    make_instance("plain_sc")
    r = box.run(["systemctl", "start", "gridbot@plain_sc.service"])
    assert r.returncode == 0, r.stderr
    assert active(box, "plain_sc") == "active"
    assert listing(box)["plain_sc"]["active_state"] == "active"


def test_kill_9_is_restarted_by_systemd(box, make_instance):
    make_instance("kill_me")
    box.gridbot("start", "kill_me", check=True)
    before = box.show("gridbot@kill_me.service", "MainPID", "NRestarts")
    box.run(["kill", "-9", before["MainPID"]], check=True)
    after = wait_for(lambda: (lambda s: s if s["MainPID"] not in ("0", before["MainPID"]) and s["ActiveState"] == "active" else None)(
        box.show("gridbot@kill_me.service", "MainPID", "NRestarts", "ActiveState")), timeout=30)
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    assert listing(box)["kill_me"]["restarts"] >= 1


def test_stop_all_stops_every_instance(box, make_instance):
    for n in ("all_a", "all_b", "all_c"):
        make_instance(n, low=10, high=20)
    box.gridbot("start", "all_a", "all_b", check=True)
    box.run(["systemctl", "start", "gridbot@all_c.service"], check=True)
    r = box.gridbot("stop-all")
    assert r.returncode == 0, r.stderr
    for n in ("all_a", "all_b", "all_c"):
        assert active(box, n) == "inactive"
        assert n in r.stdout


def test_restart_and_restart_refuses_a_broken_config(box, make_instance):
    make_instance("rs_one")
    box.gridbot("start", "rs_one", check=True)
    pid1 = box.show("gridbot@rs_one.service", "MainPID")["MainPID"]
    box.gridbot("restart", "rs_one", check=True)
    pid2 = box.show("gridbot@rs_one.service", "MainPID")["MainPID"]
    assert pid2 != pid1 and pid2 != "0"
    box.put("/etc/gridbot/rs_one.json", '{"symbol": "SOL_USDC", "lower_price": 5, "upper_price": 1}')
    r = box.gridbot("restart", "rs_one")
    assert r.returncode == 6 and "rs_one.json" in r.stderr and "Traceback" not in r.stderr
    assert box.show("gridbot@rs_one.service", "MainPID")["MainPID"] == pid2  # still the same bot


def test_failed_instance_listed_then_cleanup(box, make_instance):
    make_instance("broken_one", text='{"symbol": "SOL_USDC", "lower_price": 5}')
    box.run(["systemctl", "start", "gridbot@broken_one.service"])  # systemctl does not validate
    wait_for(lambda: active(box, "broken_one") == "failed")
    row = listing(box)["broken_one"]
    assert row["active_state"] == "failed" and row["exit_status"] == 78
    human = [ln for ln in box.gridbot("list", check=True).stdout.splitlines() if ln.startswith("broken_one ")]
    assert human and "failed (exit 78)" in human[0]
    r = box.gridbot("cleanup")  # no terminal, no --yes: refuse and change nothing
    assert r.returncode == 2 and "--yes" in r.stderr and active(box, "broken_one") == "failed"
    r = box.gridbot("cleanup", "--yes")
    assert r.returncode == 0 and "broken_one: reset" in r.stdout
    assert active(box, "broken_one") == "inactive"


def test_start_failure_is_reported_with_its_reason_or_a_pointer_to_logs(box, make_instance):
    make_instance("bad_start", text=paper_config())
    box.put("/etc/gridbot/bad_start.json", paper_config())
    # a config the CLI accepts but the bot cannot run: state directory made unusable
    box.sh("mkdir -p /var/lib/gridbot && touch /var/lib/gridbot/bad_start", check=True)
    try:
        r = box.gridbot("start", "bad_start", "--timeout", "20")
        assert r.returncode == 1
        (line,) = r.stderr.strip().splitlines()  # root reads the journal: the reason itself, one line
        assert line.startswith("bad_start: started FAILED: job failed (exit-code, exit status 238): ")
        assert "gridbot@bad_start.service: Failed" in line and "File exists" in line  # systemd's reason
        r = box.gridbot("start", "bad_start", "--timeout", "20", user="op")  # no journal rights: the pointer
        assert r.returncode == 1
        assert "bad_start: started FAILED" in r.stderr and "see `gridbot logs bad_start`" in r.stderr
    finally:
        box.sh("rm -f /var/lib/gridbot/bad_start")


def test_list_shows_never_started_and_enabled_but_stopped(box, make_instance):
    make_instance("never_run")
    make_instance("boot_only")
    r = box.gridbot("enable", "boot_only")
    assert r.returncode == 0, r.stderr
    rows = listing(box)
    assert rows["never_run"]["active_state"] == "inactive" and rows["never_run"]["enabled"] is False
    assert rows["boot_only"]["active_state"] == "inactive" and rows["boot_only"]["enabled"] is True
    human = box.gridbot("list", check=True).stdout
    assert any(line.startswith("boot_only") and "enabled" in line for line in human.splitlines())
    r = box.gridbot("disable", "boot_only", check=True)
    assert listing(box)["boot_only"]["enabled"] is False


def test_enable_now_and_disable_now(box, make_instance):
    make_instance("en_now")
    box.gridbot("enable", "--now", "en_now", check=True)
    assert active(box, "en_now") == "active"
    assert box.run(["systemctl", "is-enabled", "gridbot@en_now.service"]).stdout.strip() == "enabled"
    box.gridbot("disable", "--now", "en_now", check=True)
    assert active(box, "en_now") == "inactive"
    assert box.run(["systemctl", "is-enabled", "gridbot@en_now.service"]).stdout.strip() == "disabled"


def test_logs_show_only_the_named_instance(box, make_instance):
    make_instance("log_a")
    make_instance("log_b", low=1000, high=2000)
    box.gridbot("start", "log_a", "log_b", check=True)
    a = box.gridbot("logs", "log_a", "-n", "200", check=True).stdout
    b = box.gridbot("logs", "log_b", "-n", "200", check=True).stdout
    assert "log_a" in a and "log_b" not in a
    assert "log_b" in b and "log_a" not in b
    both = box.gridbot("logs", "log_a", "log_b", "-n", "400", check=True).stdout
    assert "log_a" in both and "log_b" in both
    errs = box.gridbot("logs", "log_a", "-p", "err", check=True).stdout
    assert "Started" not in errs
    recent = box.gridbot("logs", "log_a", "--since", "10 minutes ago", check=True).stdout
    assert "log_a" in recent
    future = box.gridbot("logs", "log_a", "--since", "tomorrow", check=True).stdout
    assert "log_a" not in future
    grep = box.gridbot("logs", "log_a", "--grep", "grid", "-n", "50", check=True).stdout
    assert all("grid" in ln.lower() for ln in grep.splitlines() if not ln.startswith("--"))


def test_stats_real_memory_and_cpu_and_never_uint64_max(box, make_instance):
    make_instance("stat_a")
    box.gridbot("start", "stat_a", check=True)
    data = json.loads(box.gridbot("stats", "--json", check=True).stdout)
    row = next(i for i in data["instances"] if i["name"] == "stat_a")
    assert row["memory_bytes"] is not None and 1_000_000 < row["memory_bytes"] < 500_000_000
    # CPU is real too (sdbox makes the cpu/cpuacct controllers usable): a started Python bot used some
    assert row["cpu_seconds"] is not None and 0.01 < row["cpu_seconds"] < 60
    st = box.gridbot("status", "stat_a", check=True)
    assert "n/a" not in st.stdout and "n/a" not in st.stderr
    assert row["tasks"] is not None and row["tasks"] >= 1
    assert data["total"]["memory_bytes"] >= row["memory_bytes"]
    text = box.gridbot("stats", check=True).stdout
    assert "18446744073709551615" not in text and "TOTAL" in text
    listed = box.gridbot("list", check=True)
    assert "18446744073709551615" not in listed.stdout and "n/a" not in listed.stderr


def test_list_says_once_why_a_figure_is_na(box, make_instance):
    """A unit whose CPU accounting is off has no CPU figure: `list` (like status and stats) shows n/a
    and says why, once, on stderr."""
    make_instance("na_a")
    make_instance("na_b")
    box.sh("mkdir -p /run/systemd/system/gridbot@na_a.service.d /run/systemd/system/gridbot@na_b.service.d && "
           "for n in na_a na_b; do printf '[Service]\nCPUAccounting=no\n' "
           ">/run/systemd/system/gridbot@$n.service.d/50-test.conf; done && systemctl daemon-reload")
    try:
        box.gridbot("start", "na_a", "na_b", check=True)
        listed = box.gridbot("list", "--wide", check=True)
        rows = [ln for ln in listed.stdout.splitlines() if ln.startswith("na_")]
        assert len(rows) == 2 and all(" n/a " in ln for ln in rows), listed.stdout
        (line,) = listed.stderr.splitlines()
        assert line.startswith("CPU n/a: systemd keeps no such figure for these units: its accounting is off")
        assert box.gridbot("list", "--json", check=True).stderr == ""  # JSON: null, no note
    finally:
        box.sh("rm -rf /run/systemd/system/gridbot@na_a.service.d /run/systemd/system/gridbot@na_b.service.d; "
               "systemctl daemon-reload")


def test_start_dash_c_installs_the_config(box):
    box.put("/root/incoming/cfg_in.json", paper_config())
    r = box.gridbot("start", "-c", "/root/incoming/cfg_in.json")
    try:
        assert r.returncode == 0, r.stderr
        assert box.run(["cmp", "/root/incoming/cfg_in.json", "/etc/gridbot/cfg_in.json"]).returncode == 0
        assert active(box, "cfg_in") == "active"
        assert box.gridbot("status", "-c", "/root/incoming/cfg_in.json").returncode == 0
        box.put("/root/incoming/cfg_in.json", paper_config(low=110))
        r = box.gridbot("start", "-c", "/root/incoming/cfg_in.json")
        assert r.returncode == 2 and "--force" in r.stderr
        assert box.run(["cmp", "/root/incoming/cfg_in.json", "/etc/gridbot/cfg_in.json"]).returncode != 0
        r = box.gridbot("start", "--force", "-c", "/root/incoming/cfg_in.json")
        assert r.returncode == 0 and box.run(["cmp", "/root/incoming/cfg_in.json", "/etc/gridbot/cfg_in.json"]).returncode == 0
        assert box.gridbot("stop", "-c", "/root/incoming/cfg_in.json").returncode == 0
    finally:
        box.sh("systemctl stop gridbot@cfg_in; rm -f /etc/gridbot/cfg_in.json")


def test_info_and_validate_all_clash(box, make_instance):
    make_instance("info_a", web_port=18080)
    data = json.loads(box.gridbot("info", "info_a", "--json", check=True).stdout)
    assert data["config_path"] == "/etc/gridbot/info_a.json" and data["state_dir"] == "/var/lib/private/gridbot/info_a"
    assert data["config"]["symbol"] == "SOL_USDC" and data["credentials"].startswith("not needed")
    assert box.gridbot("validate", "--all").returncode == 0
    make_instance("info_b", web_port=18080)
    r = box.gridbot("validate", "--all", "--json")
    assert r.returncode == 6
    assert "web_port 18080" in json.loads(r.stdout)["(fleet)"]["error"]
    r = box.gridbot("start", "info_b")
    assert r.returncode == 6 and "web_port" in r.stderr and active(box, "info_b") == "inactive"


def test_restart_all_and_stop_all_flag(box, make_instance):
    make_instance("flag_a")
    make_instance("flag_b", low=1000, high=2000)
    box.gridbot("start", "flag_a", "flag_b", check=True)
    pids = {n: box.show(f"gridbot@{n}.service", "MainPID")["MainPID"] for n in ("flag_a", "flag_b")}
    r = box.gridbot("restart", "--all")
    assert r.returncode == 0, r.stderr
    assert "flag_a: restarted" in r.stdout and "flag_b: restarted" in r.stdout
    assert all(box.show(f"gridbot@{n}.service", "MainPID")["MainPID"] not in ("0", p) for n, p in pids.items())
    r = box.gridbot("stop", "--all")
    assert r.returncode == 0 and "flag_a: stopped" in r.stdout
    assert active(box, "flag_a") == "inactive" and active(box, "flag_b") == "inactive"
    r = box.gridbot("stop", "--all")
    assert r.returncode == 0 and "no instance is running" in r.stderr
