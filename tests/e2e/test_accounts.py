"""The account rules in the real systemd, enforced by the bot itself: a second live instance on one
account+symbol started with plain `systemctl start` fails with one journal line and leaves the
first alone; a live instance whose state was lost refuses until `gridbot reset`, which then lets it
start clean; bad input to reset is one line, a non-zero exit and no change."""
from __future__ import annotations

import json
import time

import pytest

from .conftest import keypair, start_fake_backpack

PORT = 28417  # the container shares the host network: a port no other test uses
# (the range sits inside Backpack's price band, 0.75-1.25 x 150, as the fake enforces it)
ACCOUNTS = "/var/lib/gridbot/.accounts"


def live_config(account: str = "main", **extra) -> str:
    cfg = {"exchange": "backpack", "symbol": "SOL_USDC", "lower_price": 120, "upper_price": 180, "levels": 10,
           "qty_per_level": 0.1, "backpack": {"base_url": f"http://127.0.0.1:{PORT}", "poll_interval_s": 0.5,
                                              "account": account}}
    cfg.update(extra)
    return json.dumps(cfg)


@pytest.fixture(scope="module")
def keys(box):
    """One fake Backpack account; every instance of these tests trades on it with the same key."""
    api_key, api_secret = keypair()
    start_fake_backpack(box, "fakebp-acc", PORT, api_key, "/root/fake-acc.json")
    yield json.dumps({"api_key": api_key, "api_secret": api_secret})
    box.sh("systemctl stop fakebp-acc.service; systemctl reset-failed fakebp-acc.service")


@pytest.fixture
def live_instance(box, make_instance, keys):
    made = []

    def make(name: str, **kw) -> str:
        make_instance(name, live_config(**kw))
        r = box.gridbot("credentials", "set", name, input=keys)
        assert r.returncode == 0, r.stderr
        made.append(name)
        return name

    yield make
    for n in made:
        box.sh(f"systemctl stop gridbot@{n}.service")
        box.gridbot("credentials", "rm", n)


def venue(box) -> dict:
    out = box.run(["/opt/gridbot/bin/python", "-c",
                   f"import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:{PORT}/_state').read().decode())"],
                  check=True).stdout
    return json.loads(out)


def open_ids(box) -> list[int]:
    return sorted(o["client_id"] for o in venue(box)["open_orders"])


def bot_lines(box, name: str) -> list[str]:
    """What the bot process itself wrote to the journal in the unit's last run."""
    inv = box.show(f"gridbot@{name}.service", "InvocationID")["InvocationID"]
    out = box.run(["journalctl", "--no-pager", "-o", "cat", f"_SYSTEMD_INVOCATION_ID={inv}", "-t", f"gridbot-{name}"],
                  check=True).stdout
    return [ln for ln in out.splitlines() if ln.strip()]


def registry(box, account: str) -> dict:
    return json.loads(box.run(["cat", f"{ACCOUNTS}/backpack-{account}/epochs.json"], check=True).stdout)


def snapshot(box, name: str) -> str:
    """Everything reset could change: the state directory, the account registry, the unit's state."""
    return box.sh(f"ls -A /var/lib/gridbot/{name}/; cat {ACCOUNTS}/*/epochs.json; "
                  f"systemctl show -p ActiveState -p MainPID gridbot@{name}.service").stdout


def test_second_instance_on_one_account_and_symbol_fails_and_the_first_keeps_trading(box, live_instance):
    first = live_instance("acc_first")
    r = box.gridbot("start", first)
    assert r.returncode == 0, r.stderr + box.gridbot("logs", first, "-n", "30").stdout
    before = box.show(f"gridbot@{first}.service", "MainPID", "ActiveState")
    orders = open_ids(box)
    assert len(orders) >= 8

    second = live_instance("acc_second")  # same account, same symbol; the CLI's clash check is bypassed
    r = box.run(["systemctl", "start", f"gridbot@{second}.service"])
    assert r.returncode != 0
    s = box.show(f"gridbot@{second}.service", "ActiveState", "ExecMainStatus", "NRestarts")
    assert s["ExecMainStatus"] == "78" and s["ActiveState"] == "failed", s
    lines = bot_lines(box, second)
    assert len(lines) == 1, lines
    assert "instance acc_first" in lines[0] and "SOL_USDC" in lines[0] and "account 'main'" in lines[0], lines

    time.sleep(3)  # several polls of the first
    assert box.show(f"gridbot@{second}.service", "NRestarts")["NRestarts"] == "0"  # 78: no restart loop
    after = box.show(f"gridbot@{first}.service", "MainPID", "ActiveState")
    assert after == before and after["ActiveState"] == "active"
    assert open_ids(box) == orders  # nothing of the first was cancelled, replaced or adopted
    assert box.run(["test", "-e", f"/var/lib/gridbot/{second}/gridbot.sqlite"]).returncode != 0

    # a paper instance on "the same" symbol is on its own simulated account: unaffected
    box.put("/etc/gridbot/acc_paper.json", json.dumps({"symbol": "SOL_USDC", "lower_price": 100, "upper_price": 200,
                                                       "levels": 10, "qty_per_level": 0.1}))
    try:
        assert box.run(["systemctl", "start", "gridbot@acc_paper.service"]).returncode == 0
        assert box.show("gridbot@acc_paper.service", "ActiveState")["ActiveState"] == "active"
    finally:
        box.sh("systemctl stop gridbot@acc_paper.service; rm -f /etc/gridbot/acc_paper.json")


def test_lost_state_refuses_until_reset_then_starts_clean(box, live_instance):
    name = live_instance("acc_lost", account="lost")
    r = box.gridbot("start", name)
    assert r.returncode == 0, r.stderr + box.gridbot("logs", name, "-n", "30").stdout
    first_epochs = registry(box, "lost")["instances"][name]["epochs"]
    assert len(first_epochs) == 1
    mode = box.sh(f"stat -c '%a %G' {ACCOUNTS}/backpack-lost {ACCOUNTS}/backpack-lost/epochs.json "
                  f"{ACCOUNTS}/backpack-lost/SOL_USDC.lock", check=True).stdout.split("\n")
    assert mode[:3] == ["2770 gridbot", "660 gridbot", "660 gridbot"], mode

    # bad input while it runs: one line, non-zero, nothing changed
    before = snapshot(box, name)
    r = box.gridbot("reset", name, "--yes")
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "stop it first" in r.stderr and not r.stdout, r
    assert snapshot(box, name) == before

    box.gridbot("stop", name, check=True)
    box.sh(f"rm -rf /var/lib/gridbot/{name}/*", check=True)  # the state is lost
    r = box.run(["systemctl", "start", f"gridbot@{name}.service"])
    assert r.returncode != 0
    assert box.show(f"gridbot@{name}.service", "ExecMainStatus")["ExecMainStatus"] == "78"
    lines = bot_lines(box, name)
    assert len(lines) == 1 and f"run `gridbot reset {name}`" in lines[0], lines
    assert box.gridbot("start", name).returncode != 0  # `gridbot start` cannot get round it either

    # more bad input: unknown name, no terminal without --yes, a bad name, an operator (not root)
    before = snapshot(box, name)
    for args, code, user in ((["nosuch", "--yes"], 5, None), ([name], 2, None), (["../etc", "--yes"], 2, None),
                             ([name, "--yes"], 4, "op")):
        r = box.gridbot("reset", *args, user=user)
        assert r.returncode == code and len(r.stderr.splitlines()) == 1 and not r.stdout, (args, r)
    assert "sudo" in r.stderr
    assert snapshot(box, name) == before

    r = box.gridbot("reset", name, "--yes")
    assert r.returncode == 0, r.stderr
    assert f"epochs {first_epochs[0]} retired" in r.stdout and "no longer marked failed" in r.stdout, r.stdout
    entry = registry(box, "lost")["instances"][name]
    assert entry["epochs"] == [] and entry["retired"] == first_epochs
    assert entry["cancel_on_start"] == {"symbol": "SOL_USDC", "epochs": first_epochs}

    r = box.gridbot("start", name)
    assert r.returncode == 0, r.stderr + box.gridbot("logs", name, "-n", "30").stdout
    lines = bot_lines(box, name)
    assert any("reset: cancelled" in ln for ln in lines) and any(ln.startswith("new grid:") for ln in lines), lines
    entry = registry(box, "lost")["instances"][name]
    assert "cancel_on_start" not in entry and len(entry["epochs"]) == 1 and entry["epochs"] != first_epochs
    # No order of the old state is open; the fresh grid is placed under its new epoch only.
    deadline = time.monotonic() + 30
    while len(open_ids(box)) < 8 and time.monotonic() < deadline:
        time.sleep(0.5)
    fresh = open_ids(box)
    assert len(fresh) >= 8 and {c >> 18 for c in fresh} == set(entry["epochs"]), fresh


def test_account_dir_is_shared_through_the_group_by_other_users(box, live_instance):
    """Instances under users of their own (DynamicUser=) still see each other's locks: a transient
    unit under a dynamic user, sandboxed as the template, is refused the symbol a bot holds."""
    name = live_instance("acc_group", account="grp")
    assert box.gridbot("start", name).returncode == 0
    script = ("import sys; from pathlib import Path; from gridbot import account, config; "
              f"cfg = config.load_file(Path('/etc/gridbot/{name}.json'))\n"
              "try:\n"
              f"    account.claim('intruder', cfg, Path('{ACCOUNTS}'))\n"
              "except account.AccountError as e:\n"
              "    print(e); sys.exit(3)\n")
    r = box.run(["systemd-run", "--wait", "--pipe", "--quiet", "-p", "DynamicUser=yes", "-p", "User=gbdyn",
                 "-p", "Group=gridbot", "-p", "PrivateUsers=yes", "-p", "UMask=0077", "-p", "ProtectSystem=strict",
                 "-p", f"ReadWritePaths=-{ACCOUNTS}", "/opt/gridbot/bin/python", "-c", script])
    assert r.returncode == 3 and f"instance {name}" in r.stdout, r
    box.gridbot("stop", name, check=True)  # now the dynamic user can take it, and record an epoch
    r = box.run(["systemd-run", "--wait", "--pipe", "--quiet", "-p", "DynamicUser=yes", "-p", "User=gbdyn",
                 "-p", "Group=gridbot", "-p", "PrivateUsers=yes", "-p", "UMask=0077", "-p", "ProtectSystem=strict",
                 "-p", f"ReadWritePaths=-{ACCOUNTS}", "/opt/gridbot/bin/python", "-c",
                 script.replace("    account.claim('intruder', cfg, Path('" + ACCOUNTS + "'))",
                                "    print(account.claim('intruder', cfg, Path('" + ACCOUNTS + "')).new_epoch())")])
    assert r.returncode == 0 and r.stdout.strip().isdigit(), r
    assert box.gridbot("start", name).returncode == 0  # and the gridbot user shares what it wrote
