"""Pure checks: instance names, config validation messages, clash detection, rendering."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from gridbot import config as cfgmod
from gridbot._units import check_name, instance_of, unit_name
from gridbot.cli import _render
from gridbot.errors import ConfigError, UsageError
from gridbot.fleet import check_clashes

GOOD = {"symbol": "SOL_USDC", "lower_price": 100, "upper_price": 200, "levels": 10, "qty_per_level": 0.1}


@pytest.mark.parametrize("name", ["bp_sol_01", "a", "A-b_c", "x_y", "9lives", "_x", "a" * 23])
def test_good_names_round_trip(name):
    assert instance_of(unit_name(name)) == name


@pytest.mark.parametrize("name", ["", "a/b", "..", "a..b", ".x", "x.", "-x", "a b", "x@y", "x*", "x?", "[x]", "x\\y",
                                  "naïve", "x\ny", "a" * 24, "$(id)", "x:y", "%i", "x.y", "--help", "a.b.c"])
def test_bad_names_rejected(name):
    with pytest.raises(UsageError) as exc:
        check_name(name)
    assert "\n" not in str(exc.value)


def parse(**over):
    return cfgmod.parse_config(json.dumps({**GOOD, **over}), "t.json")


def test_valid_config_and_decimal_money():
    cfg = parse()
    assert cfg.lower_price == Decimal("100") and cfg.exchange == "paper"


@pytest.mark.parametrize("over, needle", [
    ({"uper_price": 1}, "uper_price: unknown key"),
    ({"lower_price": 300}, "must be below upper_price"),
    ({"levels": 1}, "levels:"),
    ({"levels": 501}, "levels:"),
    ({"qty_per_level": 0}, "qty_per_level:"),
    ({"investment": 1000}, "exactly one of"),
    ({"symbol": "sol/usdc"}, "symbol:"),
    ({"stop_loss": 150}, "stop_loss"),
    ({"take_profit": 150}, "take_profit"),
    ({"upper_price": 101, "levels": 50}, "round-trip fee"),
    ({"web_port": 80}, "web_port:"),
    ({"exchange": "binance"}, "exchange:"),
])
def test_invalid_configs_name_the_field(over, needle):
    with pytest.raises(ConfigError) as exc:
        parse(**over)
    msg = str(exc.value)
    assert msg.startswith("t.json: ") and needle in msg and "\n" not in msg


@pytest.mark.parametrize("text", ["{", "", "[]", "null", '{"lower_price": NaN}', '{"a": Infinity}'])
def test_malformed_json(text):
    with pytest.raises(ConfigError):
        cfgmod.parse_config(text, "t.json")


def test_nan_and_infinity_refused_even_as_strings():
    for bad in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(ConfigError):
            parse(lower_price=bad)


def test_huge_file_refused():
    with pytest.raises(ConfigError, match="larger than"):
        cfgmod.parse_config(" " * (cfgmod.MAX_CONFIG_BYTES + 1), "big.json")


def test_schema_allows_dollar_schema_key():
    assert "$schema" in cfgmod.schema()["properties"]
    parse(**{"$schema": "https://gridbot.invalid/schema/config.json"})


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


def test_list_names_ignores_unsafe_stems(tmp_path):
    for stem in ("good", "bad name", ".hidden", "also-good"):
        (tmp_path / f"{stem}.json").write_text("{}")
    (tmp_path / "x.json.example").write_text("{}")
    assert cfgmod.list_names(tmp_path) == ["also-good", "good"]


def test_render_never_prints_uint64_max():
    assert _render.bytes_h(None) == "n/a" and _render.cpu_h(None) == "n/a"
    assert _render.bytes_h(5 * 1024 * 1024) == "5.0M"
    from gridbot.systemd import _figure
    assert _figure(2**64 - 1) is None and _figure(5) == 5


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


# -- issue 10: hostile files, hostile users -----------------------------------------------------
import asyncio  # noqa: E402
import os  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from gridbot import fleet  # noqa: E402


def test_read_regular_refuses_symlink_fifo_dir_device_and_big_files(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(GOOD))
    assert cfgmod.read_regular(good) == good.read_bytes()
    (tmp_path / "link.json").symlink_to(good)
    with pytest.raises(ConfigError, match="is a symlink"):
        cfgmod.read_regular(tmp_path / "link.json")
    os.mkfifo(tmp_path / "fifo.json")
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match="not a regular file"):  # never blocks waiting for a writer
        cfgmod.read_regular(tmp_path / "fifo.json")
    assert time.monotonic() - t0 < 1
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(ConfigError, match="directory"):
        cfgmod.read_regular(tmp_path / "dir.json")
    with pytest.raises(ConfigError, match="not a regular file"):
        cfgmod.read_regular(Path("/dev/zero"))
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (cfgmod.MAX_CONFIG_BYTES + 1))
    with pytest.raises(ConfigError, match="larger than"):
        cfgmod.read_regular(big)
    with pytest.raises(ConfigError, match="no such config file"):
        cfgmod.read_regular(tmp_path / "missing.json")


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


def test_service_must_be_able_to_read_the_config():
    import shutil
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's own tmp root is 0700: nobody else could reach it
    request_cleanup = lambda: shutil.rmtree(tmp_path, ignore_errors=True)  # noqa: E731
    p = tmp_path / "c.json"
    p.write_text("{}")
    os.chmod(tmp_path, 0o755)
    os.chmod(p, 0o600)  # copied with umask 077
    with pytest.raises(ConfigError, match="cannot read it.*chmod 0644"):
        cfgmod.service_readable(p)
    os.chmod(p, 0o644)
    cfgmod.service_readable(p)
    os.chmod(tmp_path, 0o700)
    try:
        with pytest.raises(ConfigError, match="cannot reach it"):
            cfgmod.service_readable(p)
    finally:
        os.chmod(tmp_path, 0o755)
        request_cleanup()


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
    with pytest.raises(UsageError, match="editor exited with status 3"):
        fleet.edit_config(ctx, "ed", lambda p: 3, lambda why: False)
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


@pytest.mark.parametrize("url, ok", [
    ("https://api.backpack.exchange", True), ("http://127.0.0.1:8080", True), ("http://[::1]:9000/x", True),
    ("http://localhost:1234", True), ("http://api.backpack.exchange", False), ("http://169.254.169.254", False),
    ("http://127.0.0.1.evil.example", False), ("https://user:pw@api.backpack.exchange", False),
    ("ftp://api.backpack.exchange", False), ("http://10.0.0.1", False)])
def test_base_url_https_unless_loopback(url, ok):
    over = {"exchange": "backpack", "backpack": {"base_url": url}}
    if ok:
        parse(**over)
    else:
        with pytest.raises(ConfigError, match="base_url"):
            parse(**over)


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


def test_core_dumps_forbidden_for_key_holders():
    code = ("from gridbot._nodump import forbid_core_dumps, dumpable\n"
            "forbid_core_dumps()\nassert not dumpable()\nprint('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == "ok", r.stderr
    unit = (Path(__file__).resolve().parents[2] / "systemd" / "gridbot@.service").read_text()
    assert "\nLimitCORE=0\n" in unit


def test_state_lock_refuses_a_second_bot(tmp_path):
    from gridbot import _statelock

    fd = _statelock.acquire(tmp_path / "s", "x")
    try:
        code = ("import sys; from pathlib import Path; from gridbot import _statelock\n"
                "try:\n    _statelock.acquire(Path(sys.argv[1]), 'x')\nexcept _statelock.StateLocked as e:\n"
                "    print(e); sys.exit(3)\n")
        r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s")], capture_output=True, text=True, timeout=30)
        assert r.returncode == 3 and "locked by another process" in r.stdout and "gridbot stop x" in r.stdout
    finally:
        os.close(fd)
    os.close(_statelock.acquire(tmp_path / "s", "x"))  # free again once the holder is gone


def test_run_by_hand_never_writes_state_into_the_cwd(tmp_path, monkeypatch):
    from gridbot import runner

    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.delenv("GRIDBOT_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    assert runner.state_dir_for("n") == Path("/var/lib/gridbot/n")
    assert runner.state_dir_for("n", user=True) == tmp_path / "xdg" / "gridbot" / "n"


# -- the status port ------------------------------------------------------------------------------
def _serve(server_kw: dict, client):
    from gridbot.status_http import StatusServer

    snap = {"instance": "x", "symbol": "SOL_USDC", "price": "1", "balances": {"USDC": {"available": "5", "locked": "0"}}}

    async def main():
        srv = StatusServer(0, lambda: dict(snap), lambda: True, **server_kw)
        srv._server = await asyncio.start_server(srv._handle, "127.0.0.1", 0, limit=4096)
        port = srv._server.sockets[0].getsockname()[1]
        try:
            return await client(port, srv)
        finally:
            await srv.close()

    return asyncio.run(main())


async def _req(port: int, raw: bytes) -> bytes:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(raw)
    await w.drain()
    data = await asyncio.wait_for(r.read(), 5)
    w.close()
    return data


def test_status_head_has_no_body_and_balances_are_private_by_default():
    async def client(port, srv):
        head = await _req(port, b"HEAD /api/status HTTP/1.1\r\n\r\n")
        get = await _req(port, b"GET /api/status HTTP/1.1\r\n\r\n")
        metrics = await _req(port, b"GET /metrics HTTP/1.1\r\n\r\n")
        return head, get, metrics

    head, get, metrics = _serve({}, client)
    assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n") and b"Content-Length: " in head
    body = json.loads(get.split(b"\r\n\r\n", 1)[1])
    assert body["symbol"] == "SOL_USDC" and "balances" not in body
    assert b"gridbot_balance" not in metrics
    _h, get, metrics = _serve({"show_balances": True}, client)
    assert json.loads(get.split(b"\r\n\r\n", 1)[1])["balances"]["USDC"]["available"] == "5"
    assert b"gridbot_balance" in metrics


def test_status_port_bounds_requests_and_connections():
    from gridbot import status_http

    async def client(port, srv):
        huge = await _req(port, b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n")
        garbage = await _req(port, b"\x00\xff garbage\r\n\r\n")
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(status_http.MAX_CONNECTIONS + 4)]
        await asyncio.sleep(0.2)
        busy = srv.active
        for _r, w in idle:
            w.close()
        return huge, garbage, busy, srv.dropped

    huge, garbage, busy, dropped = _serve({}, client)
    assert huge == b"" and garbage.startswith(b"HTTP/1.1 400")
    assert busy <= status_http.MAX_CONNECTIONS and dropped >= 4


def test_status_port_flood_is_silent(caplog):
    async def client(port, srv):
        async def hit():
            try:
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(b"GET /metrics HT")
                w.close()
            except OSError:
                pass
        await asyncio.gather(*(hit() for _ in range(300)))
        await asyncio.sleep(0.3)
        return srv.dropped

    with caplog.at_level("DEBUG"):
        dropped = _serve({}, client)
    assert dropped > 0
    assert not [r for r in caplog.records if r.levelno >= 30], [r.getMessage() for r in caplog.records]


def test_web_is_reserved_its_user_is_the_dashboards():
    """User=gridbot-%i: an instance `web` would run as the static gridbot-web user (the dashboard's)."""
    with pytest.raises(UsageError, match="reserved"):
        check_name("web")
    assert check_name("web1") == "web1"
    rules = (Path(__file__).resolve().parents[2] / "packaging" / "50-gridbot.rules").read_text()
    assert 'm[1] != "web"' in rules


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
