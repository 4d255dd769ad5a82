"""Storing and loading Backpack keys (gridbot/credentials.py). No systemd needed except the one
test that runs the real ``systemd-creds`` with a throw-away host key (skipped where it is missing)."""
from __future__ import annotations

import base64
import io
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from gridbot import credentials as cr
from gridbot.errors import CredentialsError, UsageError
from gridbot.exchange import _sign

SECRET = base64.b64encode(bytes(range(32))).decode()
KEY = _sign.public_key_b64(_sign.load_private_key(SECRET))
OTHER_KEY = _sign.public_key_b64(_sign.load_private_key(base64.b64encode(bytes(32)).decode()))
NO_CREDS = None  # systemd_creds=None: behave like a host without systemd-creds


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


# --- store / has / remove ------------------------------------------------------------------------

def test_store_plain_roundtrip(tmp_path):
    d = tmp_path / "credentials"
    p = cr.store_keys("alpha", KEY, SECRET, d, systemd_creds=NO_CREDS)
    assert p == d / "alpha.key"
    assert _mode(p) == 0o600 and _mode(d) == 0o700
    assert json.loads(p.read_text()) == {"api_key": KEY, "api_secret": SECRET}
    assert cr.has_keys("alpha", d) and not cr.has_keys("beta", d)
    assert cr.credential_directive("alpha", d) == f"LoadCredential=backpack:{d}/alpha.key"
    assert cr.credential_directive("beta", d) is None
    assert sorted(os.listdir(d)) == ["alpha.key"]  # no temp files left behind


def test_store_forced_encryption_fails_clearly_without_systemd_creds(tmp_path):
    with pytest.raises(CredentialsError, match="cannot encrypt credentials for alpha: systemd-creds is not installed"):
        cr.store_keys("alpha", KEY, SECRET, tmp_path, encrypt=True, systemd_creds=NO_CREDS)
    assert not cr.has_keys("alpha", tmp_path)


def test_store_refuses_symlinked_target(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    d = tmp_path / "c"
    d.mkdir(mode=0o700)
    (d / "alpha.key").symlink_to(victim)
    with pytest.raises(CredentialsError, match="symlink"):
        cr.store_keys("alpha", KEY, SECRET, d, systemd_creds=NO_CREDS)
    assert victim.read_text() == "keep me"


def test_store_refuses_symlinked_directory(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(CredentialsError, match="not a plain directory"):
        cr.store_keys("alpha", KEY, SECRET, tmp_path / "link", systemd_creds=NO_CREDS)
    assert list(real.iterdir()) == []


def test_store_tightens_a_loose_directory(tmp_path):
    d = tmp_path / "c"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    cr.store_keys("alpha", KEY, SECRET, d, systemd_creds=NO_CREDS)
    assert _mode(d) == 0o700


def test_store_rejects_bad_names_and_mismatched_pairs(tmp_path):
    with pytest.raises(UsageError):
        cr.store_keys("../etc/passwd", KEY, SECRET, tmp_path, systemd_creds=NO_CREDS)
    with pytest.raises(CredentialsError, match="not the public key") as info:
        cr.store_keys("alpha", OTHER_KEY, SECRET, tmp_path, systemd_creds=NO_CREDS)
    assert SECRET not in str(info.value)
    with pytest.raises(CredentialsError, match="not the public key"):  # swapped key and secret
        cr.store_keys("alpha", SECRET, KEY, tmp_path, systemd_creds=NO_CREDS)
    assert os.listdir(tmp_path) == []


def test_store_without_permission_is_permission_denied():
    import sys
    import tempfile
    top = Path(tempfile.mkdtemp(prefix="gridbot-perm-"))  # not under root's 0700 pytest dir
    try:
        os.chmod(top, 0o755)
        d = top / "c"
        d.mkdir(mode=0o500)
        os.chmod(d, 0o500)
        code = ("from pathlib import Path\nfrom gridbot import credentials as cr\n"
                "from gridbot.errors import PermissionDenied\n"
                "try:\n"
                f"    cr.store_keys('alpha', {KEY!r}, {SECRET!r}, Path({str(d)!r}), systemd_creds=None)\n"
                "except PermissionDenied as e:\n    print('DENIED', e)\n")
        drop = (lambda: (os.setgid(65534), os.setuid(65534))) if os.geteuid() == 0 else None
        res = subprocess.run([sys.executable, "-"], input=code, preexec_fn=drop, capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parents[2], timeout=60)  # gridbot from this checkout  # test keys on stdin: argv is world-readable
        assert res.stdout.startswith("DENIED cannot write credentials in"), res.stdout + res.stderr
        assert "sudo gridbot credentials set alpha" in res.stdout
        assert os.listdir(d) == []
    finally:
        os.chmod(top / "c", 0o700)
        shutil.rmtree(top)


def test_remove(tmp_path):
    cr.store_keys("alpha", KEY, SECRET, tmp_path, systemd_creds=NO_CREDS)
    assert cr.remove_keys("alpha", tmp_path) is True
    assert not cr.has_keys("alpha", tmp_path)
    assert cr.remove_keys("alpha", tmp_path) is False


# --- encryption via systemd-creds ----------------------------------------------------------------

def _fake_tool(tmp_path: Path, script: str) -> str:
    tool = tmp_path / "fake-systemd-creds"
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)
    return str(tool)


def test_secret_goes_to_systemd_creds_on_stdin_not_argv(tmp_path):
    seen = tmp_path / "seen"
    tool = _fake_tool(tmp_path, f'echo "$@" > {seen}.argv; cat > {seen}.stdin; printf CIPHERTEXT\n')
    d = tmp_path / "c"
    p = cr.store_keys("alpha", KEY, SECRET, d, systemd_creds=tool)
    assert p == d / "alpha.cred" and p.read_bytes() == b"CIPHERTEXT" and _mode(p) == 0o600
    argv = Path(f"{seen}.argv").read_text()
    assert argv.split() == ["encrypt", "--name=backpack", "-", "-"]
    assert SECRET not in argv
    assert json.loads(Path(f"{seen}.stdin").read_text())["api_secret"] == SECRET
    assert cr.credential_directive("alpha", d) == f"LoadCredentialEncrypted=backpack:{d}/alpha.cred"


def test_failed_encryption_falls_back_to_plain_and_replaces_old_format(tmp_path):
    ok = _fake_tool(tmp_path, "cat >/dev/null; printf CIPHER\n")
    d = tmp_path / "c"
    cr.store_keys("alpha", KEY, SECRET, d, systemd_creds=ok)
    failing = _fake_tool(tmp_path, "cat >/dev/null; echo 'Failed to determine local credential key' >&2; exit 1\n")
    p = cr.store_keys("alpha", KEY, SECRET, d, systemd_creds=failing)
    assert p == d / "alpha.key"
    assert sorted(os.listdir(d)) == ["alpha.key"]  # the stale .cred is gone: one source of truth
    with pytest.raises(CredentialsError, match="Failed to determine local credential key"):
        cr.store_keys("alpha", KEY, SECRET, d, encrypt=True, systemd_creds=failing)


def test_real_systemd_creds_roundtrip(tmp_path, monkeypatch):
    # systemd-creds comes with the systemd package that scripts/setup.sh installs: no skipping.
    # A throw-away host key, so the machine's /var/lib/systemd/credential.secret is never touched.
    monkeypatch.setenv("SYSTEMD_CREDENTIAL_SECRET", str(tmp_path / "host.secret"))
    d = tmp_path / "c"
    p = cr.store_keys("alpha", KEY, SECRET, d, encrypt=True)
    assert p.suffix == ".cred" and _mode(p) == 0o600
    assert SECRET.encode() not in p.read_bytes() and KEY.encode() not in p.read_bytes()
    plain = subprocess.run(["systemd-creds", "decrypt", "--name=backpack", str(p), "-"],
                           capture_output=True, check=True).stdout
    run_dir = tmp_path / "run" / "gridbot@alpha.service"
    run_dir.mkdir(parents=True)
    (run_dir / "backpack").write_bytes(plain)  # what LoadCredentialEncrypted= hands the service
    assert cr.load_keys(environ={"CREDENTIALS_DIRECTORY": str(run_dir)}) == (KEY, SECRET)
    wrong = subprocess.run(["systemd-creds", "decrypt", "--name=other", str(p), "-"], capture_output=True)
    assert wrong.returncode != 0  # bound to the credential name "backpack"


# --- load_keys (inside the service) --------------------------------------------------------------

def _creds_dir(tmp_path: Path, content: bytes | None, unit: str = "gridbot@alpha.service") -> dict[str, str]:
    d = tmp_path / "run" / unit
    d.mkdir(parents=True)
    if content is not None:
        (d / "backpack").write_bytes(content)
    return {"CREDENTIALS_DIRECTORY": str(d)}


def test_load_json(tmp_path):
    env = _creds_dir(tmp_path, json.dumps({"api_key": KEY, "api_secret": SECRET}).encode() + b"\n")
    assert cr.load_keys(environ=env) == (KEY, SECRET)


def test_load_two_lines(tmp_path):
    env = _creds_dir(tmp_path, f"{KEY}\n{SECRET}\n".encode())
    assert cr.load_keys("alpha", environ=env) == (KEY, SECRET)


@pytest.mark.parametrize("content", [None, b"none", b"none\n", b""])
def test_absent_or_none_fallback_is_a_clear_error(tmp_path, content):
    env = _creds_dir(tmp_path, content)
    with pytest.raises(CredentialsError) as info:
        cr.load_keys(environ=env)
    assert str(info.value) == ("instance alpha trades on backpack but has no credentials: "
                               "run `sudo gridbot credentials set alpha`")


def test_no_credentials_directory_at_all():
    with pytest.raises(CredentialsError, match="instance bot7 trades on backpack but has no credentials"):
        cr.load_keys("bot7", environ={})


@pytest.mark.parametrize("content", [
    b'{"api_key": "x"}', b"only-one-line", f'{{"api_key": "{OTHER_KEY}", "api_secret": "{SECRET}"}}'.encode(),
    b"\xff\xfe binary", f"{KEY}\nnot-base64!!\n".encode(),
])
def test_malformed_credential_is_refused_without_echo(tmp_path, content):
    env = _creds_dir(tmp_path, content)
    with pytest.raises(CredentialsError) as info:
        cr.load_keys(environ=env)
    msg = str(info.value)
    assert msg.startswith("instance alpha: credential ") and "credentials set alpha" in msg
    assert SECRET not in msg and "not-base64" not in msg


def test_instance_name_from_credentials_directory():
    assert cr.instance_name({"CREDENTIALS_DIRECTORY": "/run/credentials/gridbot@grid-7.service"}) == "grid-7"
    assert cr.instance_name({}) is None


# --- reading keys for `gridbot credentials set` --------------------------------------------------

class _Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_read_keys_from_pipe():
    assert cr.read_keys(_Pipe(json.dumps({"api_key": KEY, "api_secret": SECRET}))) == (KEY, SECRET)
    assert cr.read_keys(_Pipe(f"{KEY}\n{SECRET}")) == (KEY, SECRET)


def test_read_keys_prompts_without_echo_on_a_tty():
    asked = []

    def prompt(text: str) -> str:
        asked.append(text)
        return KEY if len(asked) == 1 else SECRET + "  "
    assert cr.read_keys(_Tty(), prompt=prompt) == (KEY, SECRET)
    assert len(asked) == 2 and "not echoed" in asked[1]


def test_read_keys_refuses_huge_input():
    with pytest.raises(CredentialsError, match="larger than"):
        cr.read_keys(_Pipe("x" * (cr.MAX_BYTES + 10)))
