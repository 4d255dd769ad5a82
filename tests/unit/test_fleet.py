"""gridbot/fleet.py below the CLI (no systemd): clashes across the fleet (ports, account+symbol, the
account's shared rate limit), installing exactly the validated bytes, edit, the live drop-in, state
directories, and gridbot reset (systemd stubbed)."""
from __future__ import annotations

import json
import stat
from decimal import Decimal

import pytest

from gridbot import account, fleet
from gridbot.account import claim
from gridbot.errors import ConfigError, GridbotError, InstanceNotFound, UsageError
from gridbot.fleet import check_clashes
from gridbot.models import GridConfig

from .conftest import GOOD, parse


def test_clashes_port_and_live_account_symbol():
    a, b = parse(web_port=9000), parse(web_port=9000)
    with pytest.raises(ConfigError, match="web_port 9000"):
        check_clashes({"a": a, "b": b})
    live = dict(GOOD, exchange="backpack")
    with pytest.raises(ConfigError, match="both trade SOL_USDC"):
        check_clashes({"x": parse(**live), "y": parse(**live)})
    other_account = dict(live, backpack={"account": "sub2"})
    check_clashes({"x": parse(**live), "y": parse(**other_account)})
    check_clashes({"p": parse(), "q": parse()})  # paper accounts are per instance


def test_live_instances_on_one_account_must_fit_its_rate_limit():
    def live(symbol, interval, account="main"):
        return parse(symbol=symbol, exchange="backpack", backpack={"account": account, "poll_interval_s": interval})
    symbols = [f"C{i}_USDC" for i in range(13)]
    fine = {s: live(s, 2.0) for s in symbols[:12]}  # 12 x 66.3 req/min = 796
    check_clashes(fine)
    busy = {s: live(s, 0.2) for s in symbols[:3]}  # 3 x (600 + 2 balance + 4 reconcile + 0.3) = 1819 > 1500
    with pytest.raises(ConfigError, match="account 'main' would poll ~1819 requests/min"):
        check_clashes(busy)
    split = {s: live(s, 0.2, account=f"sub{i}") for i, s in enumerate(symbols[:3])}
    check_clashes(split)  # one subaccount each: each has its own budget


def test_incoming_installs_exactly_the_bytes_it_validated(tmp_path, monkeypatch):
    """The file is swapped after the read: what is installed is what was checked, not the new file."""
    cfg_dir, src = tmp_path / "etc", tmp_path / "src"
    cfg_dir.mkdir(), src.mkdir()
    monkeypatch.setenv("GRIDBOT_CONFIG_DIR", str(cfg_dir))
    path = src / "swap.json"
    checked = json.dumps(GOOD).encode()
    path.write_bytes(checked)
    ctx = fleet.Context()
    incoming = fleet.read_incoming(ctx, [path])
    path.unlink()
    path.symlink_to("/etc/shadow")  # the attacker's swap, after the check
    fleet.install(incoming)
    installed = cfg_dir / "swap.json"
    assert installed.read_bytes() == checked
    assert stat.S_IMODE(installed.stat().st_mode) == 0o644 and not installed.is_symlink()
    with pytest.raises(ConfigError, match="symlink"):
        fleet.read_incoming(ctx, [path])


def test_refused_start_c_writes_nothing(tmp_path, monkeypatch):
    """A -c config that clashes with an installed one is refused before a byte is written."""
    cfg_dir, src = tmp_path / "etc", tmp_path / "src"
    cfg_dir.mkdir(), src.mkdir()
    monkeypatch.setenv("GRIDBOT_CONFIG_DIR", str(cfg_dir))
    (cfg_dir / "old.json").write_text(json.dumps({**GOOD, "web_port": 9100}))
    new = src / "new.json"
    new.write_text(json.dumps({**GOOD, "web_port": 9100}))
    ctx = fleet.Context()
    incoming = fleet.read_incoming(ctx, [new])
    with pytest.raises(ConfigError, match="web_port 9100"):
        fleet.preflight(ctx, ["new"], incoming)
    assert sorted(p.name for p in cfg_dir.iterdir()) == ["old.json"]
    (cfg_dir / "x.json").write_text(json.dumps(GOOD))
    other = src / "x.json"
    other.write_text(json.dumps({**GOOD, "levels": 12}))
    with pytest.raises(UsageError, match="--force"):
        fleet.read_incoming(ctx, [other])
    assert [i.changed for i in fleet.read_incoming(ctx, [other], force=True)] == [True]


def test_edit_keeps_the_old_file_on_a_bad_result_and_installs_a_good_one(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDBOT_CONFIG_DIR", str(tmp_path))
    target = tmp_path / "ed.json"
    target.write_text(json.dumps(GOOD))
    before = target.read_bytes()
    ctx = fleet.Context(user=True)
    bad = lambda p: (p.write_text(json.dumps({**GOOD, "levels": 1})), 0)[1]  # noqa: E731
    asked = []
    with pytest.raises(ConfigError, match="levels.*unchanged"):
        fleet.edit_config(ctx, "ed", bad, lambda why: asked.append(why) or False)
    assert target.read_bytes() == before and asked and "levels" in asked[0]
    with pytest.raises(GridbotError, match="editor exited with status 3") as failed:
        fleet.edit_config(ctx, "ed", lambda p: 3, lambda why: False)
    assert failed.value.exit_code == 1  # the editor failed, not the command line
    with pytest.raises(GridbotError, match="editor was killed by signal 15"):
        fleet.edit_config(ctx, "ed", lambda p: -15, lambda why: False)
    assert target.read_bytes() == before
    with pytest.raises(InstanceNotFound, match="gridbot edit --new nothing"):
        fleet.edit_config(ctx, "nothing", lambda p: pytest.fail("the editor must not open"), lambda why: False)
    assert not (tmp_path / "nothing.json").exists()
    assert fleet.edit_config(ctx, "ed", lambda p: 0, lambda why: False) is False  # untouched
    good = lambda p: (p.write_text(json.dumps({**GOOD, "levels": 12})), 0)[1]  # noqa: E731
    assert fleet.edit_config(ctx, "ed", good, lambda why: False) is True
    assert json.loads(target.read_text())["levels"] == 12 and stat.S_IMODE(target.stat().st_mode) == 0o644
    (tmp_path / "peer.json").write_text(json.dumps({**GOOD, "web_port": 9200}))
    clash = lambda p: (p.write_text(json.dumps({**GOOD, "web_port": 9200})), 0)[1]  # noqa: E731
    with pytest.raises(ConfigError, match="web_port 9200"):
        fleet.edit_config(ctx, "ed", clash, lambda why: False)
    assert json.loads(target.read_text())["levels"] == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ed.json", "peer.json"]  # no draft or temp file left


def test_live_dropin_keeps_metadata_and_private_ranges_denied():
    text = fleet.live_dropin("x", "LoadCredentialEncrypted=backpack:/etc/gridbot/credentials/x.cred")
    deny = [ln for ln in text.splitlines() if ln.startswith("IPAddressDeny=")]
    assert deny[0] == "IPAddressDeny=" and len(deny) == 2
    for net in ("169.254.0.0/16", "fd00:ec2::254/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "link-local"):
        assert net in deny[1].removeprefix("IPAddressDeny=").split()
    assert "IPAddressAllow" not in text
    allowed = fleet.live_dropin("x", "", ["10.1.2.3", "192.168.0.0/24"])
    assert "IPAddressAllow=10.1.2.3/32 192.168.0.0/24" in allowed
    with pytest.raises(UsageError, match="not an IP address"):
        fleet.live_dropin("x", "", ["evil\n[Service]\nUser=root"])


def test_names_gridbot_would_refuse_are_split_off():
    assert fleet.valid_names(["ok", "--help", "x.y", "a" * 30, "b"]) == (["ok", "b"], ["--help", "x.y", "a" * 30])


def test_state_dir_of_a_dynamic_user_instance(tmp_path, monkeypatch):
    """The state is under private/ (systemd's symlink or nothing at all in the old place); an old
    static-user directory not yet moved is used where it is."""
    root = tmp_path / "gridbot"
    root.mkdir()
    monkeypatch.setattr(fleet.Context, "state_root", property(lambda self: root))
    ctx = fleet.Context()
    assert ctx.state_dir("a") == tmp_path / "private" / "gridbot" / "a"
    (tmp_path / "private" / "gridbot" / "a").mkdir(parents=True)
    (root / "a").symlink_to("../private/gridbot/a")
    assert ctx.state_dir("a") == tmp_path / "private" / "gridbot" / "a"
    (root / "old").mkdir()
    assert ctx.state_dir("old") == root / "old"


def live(symbol="SOL_USDC", account_label="main", poll=2.0, exchange="backpack") -> GridConfig:
    return GridConfig(exchange=exchange, symbol=symbol, lower_price=Decimal(100), upper_price=Decimal(200), levels=10,
                      qty_per_level=Decimal("0.1"),
                      backpack={"account": account_label, "poll_interval_s": poll, "base_url": "http://127.0.0.1:9"})


# -- gridbot reset, below the CLI (systemd stubbed) ---------------------------------------------
@pytest.fixture
def user_ctx(tmp_path, monkeypatch):
    from gridbot import fleet

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("GRIDBOT_CONFIG_DIR", str(tmp_path / "conf"))
    monkeypatch.delenv("GRIDBOT_ACCOUNTS_DIR", raising=False)
    (tmp_path / "conf").mkdir()
    states = {}
    monkeypatch.setattr(fleet.removal, "_unit_state", lambda ctx, name: states.get(name, "inactive"))
    ctx = fleet.Context(user=True)
    return ctx, states


def test_reset_clears_state_retires_epochs_and_refuses_a_running_instance(user_ctx):
    from gridbot import fleet
    from gridbot.errors import UsageError

    ctx, states = user_ctx
    (ctx.config_dir / "bot.json").write_text(live().model_dump_json(by_alias=True, exclude_none=True))
    root = account.accounts_root(ctx.state_root)
    assert root == ctx.state_root / ".accounts"  # beside the instances' state directories
    state = ctx.state_root / "bot"
    (state / "sub").mkdir(parents=True)
    (state / "gridbot.sqlite").write_text("x")
    with claim("bot", live(), root) as c:
        e = c.new_epoch()
        with pytest.raises(UsageError, match=r"bot is running \(pid"):  # running outside systemd
            fleet.reset_plan(ctx, "bot")
    states["bot"] = "active"
    with pytest.raises(UsageError, match="stop it first"):
        fleet.reset_plan(ctx, "bot")
    assert sorted(p.name for p in state.iterdir()) == ["gridbot.sqlite", "sub"]
    assert account.history(root, "backpack", "main", "bot")["epochs"] == [e]  # nothing changed
    states["bot"] = "inactive"
    plan = fleet.reset_plan(ctx, "bot")
    assert plan.live and plan.epochs == (e,) and plan.state_entries == ["gridbot.sqlite", "sub"]
    states["bot"] = "activating"  # started between the question and the answer
    with pytest.raises(UsageError, match="started meanwhile"):
        fleet.reset_apply(ctx, plan)
    assert (state / "gridbot.sqlite").exists()
    states["bot"] = "inactive"
    done = fleet.reset_apply(ctx, plan)
    assert state.is_dir() and not list(state.iterdir())
    assert any(f"epochs {e} retired" in d for d in done) and any("--user start bot" in d for d in done)
    h = account.history(root, "backpack", "main", "bot")
    assert h["epochs"] == [] and h["cancel_on_start"] == {"symbol": "SOL_USDC", "epochs": [e]}


def test_reset_of_a_paper_instance_only_clears_its_state(user_ctx):
    from gridbot import fleet

    ctx, _ = user_ctx
    (ctx.config_dir / "pap.json").write_text(live(exchange="paper").model_dump_json(by_alias=True, exclude_none=True))
    (ctx.state_root / "pap").mkdir(parents=True)
    (ctx.state_root / "pap" / "gridbot.sqlite").write_text("x")
    done = fleet.reset_apply(ctx, fleet.reset_plan(ctx, "pap"))
    assert done[0].startswith("state cleared: removed 1 entry") and len(done) == 2
    assert not (ctx.state_root / ".accounts").exists()
