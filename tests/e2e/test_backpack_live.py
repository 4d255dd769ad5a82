"""A live (backpack) instance in the real systemd: keys only through systemd credentials, trading
against the fake Backpack server (base_url points at it), never in argv, environment or journal."""
from __future__ import annotations

import base64
import json
import time

import sdbox
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat



def _free_port() -> int:
    """The container shares the host's network: a port no other run (or test) holds right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PORT = _free_port()


def keypair() -> tuple[str, str]:
    priv = Ed25519PrivateKey.generate()
    seed = priv.private_bytes_raw()
    pub = priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(pub).decode(), base64.b64encode(seed).decode()


def live_config() -> str:
    # inside the fake's (Backpack's) price band at 150: 0.75 × 150 .. 1.25 × 150
    return json.dumps({"exchange": "backpack", "symbol": "SOL_USDC", "lower_price": 120, "upper_price": 180,
                       "levels": 10, "qty_per_level": 0.1,
                       "backpack": {"base_url": f"http://127.0.0.1:{PORT}", "poll_interval_s": 0.5}})


def fake_state(box) -> dict:
    out = box.run(["/opt/gridbot/bin/python", "-c",
                   f"import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:{PORT}/_state').read().decode())"],
                  check=True).stdout
    return json.loads(out)


def test_live_instance_gets_keys_from_credentials_only(box):
    api_key, api_secret = keypair()
    box.put("/root/fake-setup.json", json.dumps({"price": "150", "balances": {"SOL": "10", "USDC": "10000"}}))
    box.run(["systemd-run", "--unit=fakebp", "--property=Environment=PYTHONDONTWRITEBYTECODE=1",
             "/opt/gridbot/bin/python", str(sdbox.ROOT / "tests" / "fake_backpack.py"), "--port", str(PORT),
             "--api-key", api_key, "--state", "/root/fake-setup.json"], check=True)
    box.put("/etc/gridbot/bpx.json", live_config())
    try:
        # no credentials yet: refused before anything starts
        r = box.gridbot("start", "bpx")
        assert r.returncode == 6 and "credentials set bpx" in r.stderr
        assert box.run(["systemctl", "is-active", "gridbot@bpx.service"]).stdout.strip() == "inactive"

        # keys arrive on stdin, never argv
        r = box.gridbot("credentials", "set", "bpx", input=json.dumps({"api_key": api_key, "api_secret": api_secret}))
        assert r.returncode == 0, r.stderr
        stored = box.sh("ls -l /etc/gridbot/credentials/", check=True).stdout
        assert "bpx.cred" in stored and "-rw-------" in stored and "root root" in stored
        assert api_secret not in box.sh("cat /etc/gridbot/credentials/bpx.cred", check=True).stdout  # encrypted
        dropin = box.sh("cat /etc/systemd/system/gridbot@bpx.service.d/50-live.conf", check=True).stdout
        assert "LoadCredentialEncrypted=backpack:/etc/gridbot/credentials/bpx.cred" in dropin
        assert json.loads(box.gridbot("info", "bpx", "--json", check=True).stdout)["credentials"] == "present"

        for _ in range(50):  # the fake server was started asynchronously
            if box.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{PORT}"]).returncode == 0:
                break
            time.sleep(0.1)
        r = box.gridbot("start", "bpx")
        assert r.returncode == 0, r.stderr + box.gridbot("logs", "bpx", "-n", "30").stdout

        # READY=1 came after the grid was placed on the (fake) exchange with signed requests
        status = box.show("gridbot@bpx.service", "StatusText", "ActiveState", "MainPID")
        assert status["ActiveState"] == "active", status
        venue = fake_state(box)
        assert len(venue["open_orders"]) >= 8, venue
        assert {o["side"] for o in venue["open_orders"]} == {"Bid", "Ask"}  # Backpack's words
        # a live bot publishes its grid's figures like a paper one, and never the account's balances
        for _ in range(50):
            row = {x["name"]: x for x in json.loads(box.gridbot("list", "--json", check=True).stdout)}["bpx"]
            if row["orders_open"]:
                break
            time.sleep(0.2)
        assert (row["mode"], row["exchange"], row["symbol"]) == ("live", "backpack", "SOL_USDC")
        assert row["orders_open"] >= 8 and row["total_pnl"] is not None
        figs = box.sh("cat /run/gridbot/figures/bpx.json", check=True).stdout
        assert "balance" not in figs and "available" not in figs

        # the keys are nowhere but the credential
        pid = status["MainPID"]
        environ = box.sh(f"tr '\\0' '\\n' < /proc/{pid}/environ", check=True).stdout
        cmdline = box.sh(f"tr '\\0' ' ' < /proc/{pid}/cmdline", check=True).stdout
        journal = box.run(["journalctl", "--no-pager", "-o", "cat"], check=True).stdout
        bot_journal = box.run(["journalctl", "--no-pager", "-o", "cat", "-u", "gridbot@bpx.service"], check=True).stdout
        assert api_secret not in journal  # the fake server's own command line carries the public key
        for secret in (api_secret, api_key):
            assert secret not in environ and secret not in cmdline and secret not in bot_journal
        assert "CREDENTIALS_DIRECTORY=" in environ

        # removing the credentials takes the drop-in away too
        box.gridbot("stop", "bpx", check=True)
        assert box.gridbot("credentials", "rm", "bpx").returncode == 0
        assert box.run(["test", "-e", "/etc/systemd/system/gridbot@bpx.service.d/50-live.conf"]).returncode != 0
        assert box.gridbot("start", "bpx").returncode == 6
    finally:
        box.sh("systemctl stop gridbot@bpx.service fakebp.service; systemctl reset-failed gridbot@bpx.service; "
               "rm -f /etc/gridbot/bpx.json; rm -rf /etc/systemd/system/gridbot@bpx.service.d; systemctl daemon-reload")
