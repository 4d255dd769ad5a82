"""The commands people expect, against a real systemd: rm, reload, start --all, status of several,
results reported as each job ends, journalctl's own errors, and permission errors naming the right."""
from __future__ import annotations

import json
import re

from .conftest import keypair, paper_config, start_fake_backpack, wait_for
from .test_bad_input import snapshot
from .test_lifecycle import active


def exists(box, path: str) -> bool:
    return box.run(["test", "-e", path]).returncode == 0


def enabled(box, name: str) -> str:
    return box.run(["systemctl", "is-enabled", f"gridbot@{name}.service"]).stdout.strip()


# -- rm -------------------------------------------------------------------------------------------
def test_rm_asks_refuses_without_a_terminal_then_removes_and_keeps_state(box, make_instance):
    make_instance("rm_a")
    box.gridbot("enable", "--now", "rm_a", check=True)
    before = snapshot(box)
    r = box.gridbot("rm", "rm_a")  # no terminal, no --yes
    assert r.returncode == 2 and "--yes" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert snapshot(box) == before and active(box, "rm_a") == "active"
    r = box.gridbot("rm", "--yes", "rm_a")
    assert r.returncode == 0, r.stderr
    assert "rm_a: removed (/etc/gridbot/rm_a.json)" in r.stdout
    # the instance ran as its own dynamic user: its state is in /var/lib/private, /var/lib/gridbot/NAME links to it
    assert "state kept in /var/lib/private/gridbot/rm_a" in r.stderr and "--purge" in r.stderr
    assert active(box, "rm_a") == "inactive" and enabled(box, "rm_a") != "enabled"
    assert not exists(box, "/etc/gridbot/rm_a.json") and exists(box, "/var/lib/gridbot/rm_a")
    assert box.gridbot("status", "rm_a").returncode == 5
    assert "rm_a" not in {x["name"] for x in json.loads(box.gridbot("list", "--json", check=True).stdout)}


def test_rm_purge_removes_state_credentials_and_dropins(box, make_instance):
    make_instance("rm_p")
    box.gridbot("start", "rm_p", check=True)
    box.put("/etc/systemd/system/gridbot@rm_p.service.d/10-extra.conf", "[Service]\nEnvironment=X=1\n")
    box.put("/etc/gridbot/credentials/rm_p.key", '{"api_key": "k", "api_secret": "s"}', mode="0600")
    box.run(["systemctl", "daemon-reload"], check=True)
    assert exists(box, "/var/lib/gridbot/rm_p")
    r = box.gridbot("rm", "--purge", "--yes", "rm_p")
    assert r.returncode == 0, r.stderr
    for gone in ("/etc/gridbot/rm_p.json", "/var/lib/private/gridbot/rm_p", "/var/lib/gridbot/rm_p",
                 "/etc/gridbot/credentials/rm_p.key",
                 "/etc/systemd/system/gridbot@rm_p.service.d"):
        assert not exists(box, gone), gone
        assert gone in r.stdout, gone
    assert active(box, "rm_p") == "inactive"
    # a new instance of that name starts from scratch (no old state reused)
    make_instance("rm_p")
    box.gridbot("start", "rm_p", check=True)
    assert box.gridbot("logs", "rm_p", "-n", "400", check=True).stdout.count("new grid") == 2  # one per life


def test_rm_needs_root_and_says_so(box, make_instance):
    make_instance("rm_op")
    box.gridbot("start", "rm_op", check=True)
    before = snapshot(box)
    r = box.gridbot("rm", "--yes", "rm_op", user="op")
    assert r.returncode == 4 and "need root (sudo)" in r.stderr and "join" not in r.stderr
    assert snapshot(box) == before and active(box, "rm_op") == "active"


# -- reload ---------------------------------------------------------------------------------------
def test_reload_is_sighup_validated_and_needs_a_running_bot(box, make_instance):
    make_instance("rl_a")
    box.gridbot("start", "rl_a", check=True)
    pid = box.show("gridbot@rl_a.service", "MainPID")["MainPID"]
    box.put("/etc/gridbot/rl_a.json", paper_config(stop_loss=50))
    r = box.gridbot("reload", "rl_a")
    assert r.returncode == 0 and "rl_a: reloaded" in r.stdout, r.stderr
    assert box.show("gridbot@rl_a.service", "MainPID")["MainPID"] == pid  # same process
    wait_for(lambda: "stop_loss=50" in box.gridbot("logs", "rl_a", "--grep", "reload: applied", "-n", "5").stdout)
    # an operator may reload (polkit verb "reload")
    assert box.gridbot("reload", "rl_a", user="op").returncode == 0
    # a broken config is refused before the bot hears of it
    box.put("/etc/gridbot/rl_a.json", paper_config(levels=1))
    r = box.gridbot("reload", "rl_a")
    assert r.returncode == 6 and "levels" in r.stderr
    box.put("/etc/gridbot/rl_a.json", paper_config())
    box.gridbot("stop", "rl_a", check=True)
    r = box.gridbot("reload", "rl_a")
    assert r.returncode == 7 and "not running" in r.stderr and active(box, "rl_a") == "inactive"


# -- start --all, status of several -------------------------------------------------------------
def test_start_all_starts_every_configured_instance_or_none(box, make_instance):
    make_instance("sa_a")
    make_instance("sa_b", low=1000, high=2000)
    make_instance("sa_bad", text=paper_config(lvels=3))
    r = box.gridbot("start", "--all")
    assert r.returncode == 6 and "sa_bad.json" in r.stderr and "did you mean levels?" in r.stderr
    assert active(box, "sa_a") == "inactive" and active(box, "sa_b") == "inactive"
    box.sh("rm -f /etc/gridbot/sa_bad.json")
    r = box.gridbot("start", "--all")
    assert r.returncode == 0, r.stderr
    assert "sa_a: started" in r.stdout and "sa_b: started" in r.stdout
    assert active(box, "sa_a") == "active" and active(box, "sa_b") == "active"
    assert box.gridbot("start", "--all", "sa_a").returncode == 2


def test_status_of_several_exits_with_the_worst(box, make_instance):
    make_instance("ss_a")
    make_instance("ss_b", low=1000, high=2000)
    box.gridbot("start", "ss_a", "ss_b", check=True)
    r = box.gridbot("status", "ss_a", "ss_b")
    assert r.returncode == 0 and "gridbot@ss_a.service" in r.stdout and "gridbot@ss_b.service" in r.stdout
    data = json.loads(box.gridbot("status", "ss_a", "ss_b", "--json").stdout)
    assert [d["name"] for d in data] == ["ss_a", "ss_b"]
    box.gridbot("stop", "ss_b", check=True)
    assert box.gridbot("status", "ss_a", "ss_b").returncode == 3
    r = box.gridbot("status", "ss_a", "ghost_st", "ss_b")
    assert r.returncode == 5 and "no such instance 'ghost_st'" in r.stderr and "gridbot@ss_b.service" in r.stdout


def test_stop_all_is_an_alias_of_stop_all_flag(box, make_instance):
    make_instance("al_a")
    box.gridbot("start", "al_a", check=True)
    assert "stop-all" not in box.gridbot("--help", check=True).stdout.split("Exit codes")[0]
    r = box.gridbot("stop-all")
    assert r.returncode == 0 and "al_a: stopped" in r.stdout and active(box, "al_a") == "inactive"
    box.gridbot("start", "al_a", check=True)
    r = box.gridbot("stop", "--all")
    assert r.returncode == 0 and "al_a: stopped" in r.stdout and active(box, "al_a") == "inactive"


# -- each result the moment its job ends --------------------------------------------------------
def test_results_are_printed_as_each_job_ends(box, make_instance):
    make_instance("slow_a")
    make_instance("fast_b", low=1000, high=2000)
    box.put("/etc/systemd/system/gridbot@slow_a.service.d/90-slow.conf", "[Service]\nExecStartPre=/bin/sleep 8\n")
    box.run(["systemctl", "daemon-reload"], check=True)
    try:
        r = box.sh("gridbot start slow_a fast_b | while IFS= read -r l; do echo \"$(date +%s.%N) $l\"; done",
                   check=True, timeout=120)
    finally:
        box.sh("rm -rf /etc/systemd/system/gridbot@slow_a.service.d; systemctl daemon-reload")
    when = {m.group(2): float(m.group(1)) for m in re.finditer(r"^(\S+) (\w+): started$", r.stdout, re.M)}
    assert set(when) == {"slow_a", "fast_b"}, r.stdout
    assert r.stdout.index("fast_b: started") < r.stdout.index("slow_a: started")
    assert when["slow_a"] - when["fast_b"] > 4, when  # fast_b was printed while slow_a still started


# -- logs: journalctl's own errors, and the journal right --------------------------------------
def test_logs_bad_values_pass_journalctls_own_error_through(box, make_instance):
    make_instance("lg_a")
    box.gridbot("start", "lg_a", check=True)
    for args, words in ((["--since", "next blursday"], "timestamp"), (["-p", "loudest"], "log level"),
                        (["--grep", "(unclosed"], "")):
        r = box.gridbot("logs", "lg_a", *args)
        assert r.returncode != 0, args
        assert "permission" not in r.stderr and "systemd-journal" not in r.stderr, (args, r.stderr)
        assert words.lower() in r.stderr.lower(), (args, r.stderr)
        assert "gridbot: error" not in r.stderr  # journalctl's words, not ours
    r = box.gridbot("logs", "lg_a", user="op")  # op is in gridbot-ops, not in systemd-journal
    assert r.returncode == 4 and "systemd-journal group" in r.stderr and "No entries" not in r.stdout
    box.sh("groupadd -f systemd-journal; usermod -aG systemd-journal op", check=True)
    try:
        r = box.gridbot("logs", "lg_a", "-n", "50", user="op")
        assert r.returncode == 0 and "lg_a" in r.stdout, r.stderr
    finally:
        box.sh("gpasswd -d op systemd-journal")


# -- permissions name the missing right ---------------------------------------------------------
def test_permission_errors_name_the_missing_right(box, make_instance):
    make_instance("pm_a")
    box.put("/tmp/pm_new.json", paper_config())
    before = snapshot(box)
    r = box.gridbot("start", "-c", "/tmp/pm_new.json", user="op")  # cannot write /etc/gridbot
    assert r.returncode == 4 and "cannot write /etc/gridbot/pm_new.json" in r.stderr and "root" in r.stderr
    r = box.gridbot("start", "pm_a", user="outsider")
    assert r.returncode == 4 and "root (sudo) or membership of the 'gridbot-ops' group" in r.stderr
    r = box.gridbot("enable", "pm_a", user="op")  # a gridbot-ops member: told it needs root, never to join
    assert r.returncode == 4 and "need root" in r.stderr and "membership" not in r.stderr
    assert snapshot(box) == before and not exists(box, "/etc/gridbot/pm_new.json")


# -- validate ok = will trade -------------------------------------------------------------------
INFEASIBLE = {
    "btc_min_qty": (dict(low=60000, high=70000, qty_per_level=0.001), "below the market minimum 0.01"),
    "price_outside": (dict(low=60000, high=70000, paper={"price": {"start_price": 150}}), "outside the grid"),
    "quote_5": (dict(paper={"initial_quote": 5, "price": {"start_price": 150}}), "paper.initial_quote is 5"),
}


def test_infeasible_configs_fail_validate_and_start_and_nothing_starts(box, make_instance):
    for name, (kw, words) in INFEASIBLE.items():
        make_instance(f"if_{name}", **kw)
        before = snapshot(box)
        for verb in ("validate", "start"):
            r = box.gridbot(verb, f"if_{name}")
            assert r.returncode == 6 and words in r.stderr, (name, verb, r.stderr)
        assert snapshot(box) == before and active(box, f"if_{name}") == "inactive"


# -- a changed grid is shown before it happens ----------------------------------------------------
def test_restart_of_a_changed_paper_grid_says_what_the_bot_will_do(box, make_instance):
    make_instance("chg_p")
    box.gridbot("start", "chg_p", check=True)
    wait_for(lambda: " orders | " in box.show("gridbot@chg_p.service", "StatusText")["StatusText"])
    # only the grid changes: a changed paper start price would rebuild the simulated venue (a fresh grid)
    box.put("/etc/gridbot/chg_p.json", paper_config(low=120, high=220, paper={"price": {"start_price": 150, "interval_s": 0.5}}))
    r = box.gridbot("restart", "chg_p")  # paper: shown, not asked
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "chg_p: the grid changed (lower_price 100 -> 120; upper_price 200 -> 220)" in out
    assert re.search(r"cancel the \d+ open order\(s\) of the old grid", out)
    assert "place a new grid 120.00..220.00, 10 arithmetic intervals, 0.10 SOL per level" in out
    assert out.index("the grid changed") < out.index("chg_p: restarted")
    wait_for(lambda: "cancelling" in box.gridbot("logs", "chg_p", "--grep", "grid parameters changed", "-n", "5").stdout)
    r = box.gridbot("restart", "chg_p")  # unchanged now: nothing to show
    assert r.returncode == 0 and "grid changed" not in r.stdout


LIVE_PORT = 18998


def live_instance(box, name: str, port: int, **over) -> dict:
    """A live instance NAME (10 levels 100..200 on SOL_USDC) with its keys set, trading on a fake
    Backpack (unit fakebp-NAME) on ``port``: 10 SOL, 10000 USDC, price 150. Returns its config."""
    api_key, api_secret = keypair()
    live = {"exchange": "backpack", "symbol": "SOL_USDC", "lower_price": 100, "upper_price": 200, "levels": 10,
            "qty_per_level": 0.1, "backpack": {"base_url": f"http://127.0.0.1:{port}", "poll_interval_s": 0.5},
            **over}
    box.put(f"/etc/gridbot/{name}.json", json.dumps(live))
    start_fake_backpack(box, f"fakebp-{name}", port, api_key, f"/root/fake-{name}.json")
    box.gridbot("credentials", "set", name, input=json.dumps({"api_key": api_key, "api_secret": api_secret}),
                check=True)
    return live


def forget_live(box, name: str) -> None:
    box.sh(f"systemctl stop gridbot@{name}.service fakebp-{name}.service; systemctl reset-failed gridbot@{name}.service; "
           f"rm -f /etc/gridbot/{name}.json /etc/gridbot/credentials/{name}.*; "
           f"rm -rf /etc/systemd/system/gridbot@{name}.service.d; systemctl daemon-reload")


def test_a_live_grid_change_asks_first_refuses_without_a_terminal_and_yes_applies(box):
    try:
        live = live_instance(box, "chg_live", LIVE_PORT)
        box.gridbot("start", "chg_live", check=True)
        pid = box.show("gridbot@chg_live.service", "MainPID")["MainPID"]
        box.put("/etc/gridbot/chg_live.json", json.dumps({**live, "levels": 8}))
        r = box.gridbot("restart", "chg_live")  # no terminal, no --yes: shown, refused, nothing changed
        assert r.returncode == 2 and "--yes" in r.stderr and "real money" in r.stderr
        assert "chg_live: the grid changed (levels 10 -> 8)" in r.stdout
        assert box.show("gridbot@chg_live.service", "MainPID")["MainPID"] == pid
        r = box.gridbot("restart", "--yes", "chg_live")
        assert r.returncode == 0 and "chg_live: restarted" in r.stdout, r.stderr
        assert box.show("gridbot@chg_live.service", "MainPID")["MainPID"] not in ("0", pid)
        # an operator cannot read the bot's state: told so, and the restart itself still works
        r = box.gridbot("restart", "chg_live", user="op")
        assert r.returncode == 0 and "readable by root only" in r.stderr, r.stderr
    finally:
        forget_live(box, "chg_live")


def test_a_live_grid_the_account_cannot_fund_fails_its_start_with_the_bots_own_words(box):
    """validate cannot see a live account's balances (only the sandboxed bot holds the keys): the bot
    refuses at start (exit 78, nothing placed) and `gridbot start` prints its reason, not only a pointer
    to the logs."""
    try:
        live_instance(box, "poor_live", LIVE_PORT + 1, qty_per_level=100)
        assert box.gridbot("validate", "poor_live", "--offline").returncode == 0
        r = box.gridbot("start", "poor_live")
        assert r.returncode == 1, r.stderr
        (line,) = r.stderr.strip().splitlines()
        assert line.startswith("poor_live: started FAILED: job failed (exit-code, exit status 78): not starting: "
                               "the grid cannot trade on backpack SOL_USDC: the grid needs "), line
        assert "the USDC balance is 10000" in line
        assert box.show("gridbot@poor_live.service", "NRestarts")["NRestarts"] == "0"
        state = json.loads(box.run(["cat", "/root/fake-poor_live.json"], check=True).stdout)
        assert state.get("open_orders", []) == [] and state.get("fills", []) == []  # nothing was placed
    finally:
        forget_live(box, "poor_live")


# -- first-day details found by trying it as a new user ----------------------------------------
MARK = "/root/editor-ran"


def test_edit_refuses_before_the_editor_opens_and_new_makes_one(box, make_instance):
    ed = {"EDITOR": f"/usr/bin/touch {MARK}"}
    r = box.gridbot("edit", "ed_none", env=ed)  # no such instance: 5, as on every verb; the editor never runs
    assert r.returncode == 5 and "no such instance 'ed_none'" in r.stderr and "gridbot edit --new ed_none" in r.stderr
    assert not exists(box, MARK) and not exists(box, "/etc/gridbot/ed_none.json")
    name = make_instance("ed_a")
    r = box.gridbot("edit", name)  # no terminal and no $EDITOR: the default editor would hang
    assert r.returncode == 2 and "not a terminal" in r.stderr and "$EDITOR" in r.stderr
    box.put("/root/kill-me.sh", "#!/bin/sh\nkill -TERM $$\n", mode="0755")
    before = box.run(["cat", f"/etc/gridbot/{name}.json"], check=True).stdout
    r = box.gridbot("edit", name, env={"EDITOR": "/root/kill-me.sh"})
    assert r.returncode == 1 and "the editor was killed by signal 15" in r.stderr and "unchanged" in r.stderr
    assert box.run(["cat", f"/etc/gridbot/{name}.json"], check=True).stdout == before
    made = make_instance("ed_new", text=None)  # registered for clean-up; --new writes the file itself
    box.sh(f"rm -f /etc/gridbot/{made}.json", check=True)
    r = box.gridbot("edit", "--new", made, env={"EDITOR": "/bin/true"})  # the starting config, as offered
    assert r.returncode == 0 and "config updated" in r.stdout, r.stderr
    assert json.loads(box.run(["cat", f"/etc/gridbot/{made}.json"], check=True).stdout)["exchange"] == "paper"
    assert box.gridbot("validate", made).returncode == 0


def test_bare_gridbot_credentials_rm_unknown_and_start_of_a_running_one(box, make_instance):
    r = box.gridbot()
    assert r.returncode == 2 and r.stdout.startswith("Usage: gridbot") and r.stderr == ""
    r = box.gridbot("credentials", "rm", "cr_none")
    assert r.returncode == 5 and "no such instance 'cr_none'" in r.stderr
    name = make_instance("run_twice")
    assert box.gridbot("start", name, check=True).stdout.strip() == f"{name}: started"
    r = box.gridbot("start", name)
    assert r.returncode == 0 and r.stdout.strip() == f"{name}: already running", r.stdout
