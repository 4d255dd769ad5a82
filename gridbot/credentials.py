"""Where a live instance's Backpack API keys live, and how they reach the bot.

Keys never appear in config JSON, on a command line, in another process's environment or in a
log. They travel like this:

1. ``sudo gridbot credentials set NAME`` reads them from stdin or a no-echo prompt
   (``read_keys``), checks that the key belongs to the secret, and calls ``store_keys``.
2. ``store_keys`` writes ``{"api_key": …, "api_secret": …}`` (JSON) into ``CRED_DIR`` (0700),
   root-owned, mode 0600, atomically, never through a symlink:

   * ``NAME.cred``: encrypted with ``systemd-creds encrypt --name=backpack`` (TPM2 and/or the host
     key /var/lib/systemd/credential.secret, systemd's ``auto`` choice), whenever the host can;
     the unit loads it with ``LoadCredentialEncrypted=backpack:/etc/gridbot/credentials/NAME.cred``.
   * ``NAME.key``: plain JSON, only where ``systemd-creds`` is missing or fails (systemd < 250),
     loaded with ``LoadCredential=backpack:/etc/gridbot/credentials/NAME.key``.

   ``credential_directive`` returns the right line for the instance's drop-in.
3. systemd copies the decrypted value to ``$CREDENTIALS_DIRECTORY/backpack``, readable only by
   the service; ``exchange.backpack_keys.load_keys`` reads it there. A fallback ``SetCredential=backpack:none`` value
   counts as absent. A paper instance never calls ``load_keys``.
"""
from __future__ import annotations

import errno
import getpass
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Optional, TextIO

from ._units import check_name
from .errors import CredentialsError, PermissionDenied
from .paths import CREDENTIALS_DIR, write_atomic
# the bot's side (parsing, checking, loading inside the service) lives next to the adapter; re-exported
# here for the CLI and for older imports. One direction only: exchange/ never imports this module.
from .exchange.backpack_keys import (  # noqa: F401
    ABSENT_VALUES, CRED_ID, MAX_BYTES, check_pair, instance_name, load_keys, parse_keys,
)

CRED_DIR = CREDENTIALS_DIR
ENCRYPTED_SUFFIX = ".cred"
PLAIN_SUFFIX = ".key"


# --- parsing and checking: the bot's side, next to the adapter ------------------------------------

def read_keys(stream: Optional[TextIO] = None, *, prompt=getpass.getpass) -> tuple[str, str]:
    """Keys for ``gridbot credentials set``: from a pipe (JSON or two lines) or a no-echo prompt."""
    stream = stream if stream is not None else sys.stdin
    if stream.isatty():
        key = prompt("Backpack API key (base64 public key): ")
        secret = prompt("Backpack API secret (base64, not echoed): ")
        key, secret = key.strip(), secret.strip()
        check_pair(key, secret)
        return key, secret
    text = stream.read(MAX_BYTES + 1)
    if len(text) > MAX_BYTES:
        raise CredentialsError(f"credentials input is larger than {MAX_BYTES} bytes")
    return parse_keys(text)


# --- on the host (root) ------------------------------------------------------------------------

def key_paths(name: str, cred_dir: Path = CRED_DIR) -> tuple[Path, Path]:
    """(encrypted path, plain path) for an instance."""
    check_name(name)
    return cred_dir / f"{name}{ENCRYPTED_SUFFIX}", cred_dir / f"{name}{PLAIN_SUFFIX}"


def _is_file(p: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(p).st_mode)
    except FileNotFoundError:
        return False


def stored_path(name: str, cred_dir: Path = CRED_DIR) -> Optional[Path]:
    """The instance's stored credential file (encrypted preferred), or None."""
    for p in key_paths(name, cred_dir):
        if _is_file(p):
            return p
    return None


def has_keys(name: str, cred_dir: Path = CRED_DIR) -> bool:
    """Whether credentials are stored for ``name``. Never reads or decrypts them."""
    try:
        return stored_path(name, cred_dir) is not None
    except PermissionError:
        return False


def is_encrypted(path: Path) -> bool:
    return path.name.endswith(ENCRYPTED_SUFFIX)


def credential_directive(name: str, cred_dir: Path = CRED_DIR) -> Optional[str]:
    """The unit line that loads this instance's stored credential, or None if none is stored."""
    p = stored_path(name, cred_dir)
    if p is None:
        return None
    kind = "LoadCredentialEncrypted" if is_encrypted(p) else "LoadCredential"
    return f"{kind}={CRED_ID}:{p}"


def _encrypt(data: bytes, tool: Optional[str]) -> tuple[Optional[bytes], str]:
    """Ciphertext via systemd-creds (plaintext on stdin, never argv), or (None, why not)."""
    exe = shutil.which(tool) if tool else None
    if exe is None:
        return None, "systemd-creds is not installed (systemd < 250)"
    try:
        res = subprocess.run([exe, "encrypt", f"--name={CRED_ID}", "-", "-"], input=data,
                             capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"systemd-creds failed: {exc}"
    if res.returncode != 0 or not res.stdout:
        why = res.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit {res.returncode}"]
        return None, f"systemd-creds encrypt failed: {why[0]}"
    return res.stdout, ""


def _check_dir(cred_dir: Path) -> None:
    try:
        st = os.lstat(cred_dir)
    except FileNotFoundError:
        cred_dir.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(cred_dir, 0o700)
        st = os.lstat(cred_dir)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise CredentialsError(f"{cred_dir} is not a plain directory (symlink?); refusing to store keys there")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(cred_dir, 0o700)


def _write_atomic(target: Path, data: bytes) -> None:
    try:
        if stat.S_ISLNK(os.lstat(target).st_mode):
            raise CredentialsError(f"{target} is a symlink; refusing to write keys through it")
    except FileNotFoundError:
        pass
    write_atomic(target, data, 0o600)


def store_keys(name: str, api_key: str, api_secret: str, cred_dir: Path = CRED_DIR, *,
               encrypt: Optional[bool] = None, systemd_creds: Optional[str] = "systemd-creds") -> Path:
    """Store the instance's keys; return the file written (``.cred`` encrypted, ``.key`` plain).

    ``encrypt``: None = encrypt when the host can, else plain; True = encrypt or fail; False = plain.
    The other format's file, if any, is removed so exactly one is left.
    """
    enc_path, plain_path = key_paths(name, cred_dir)
    api_key, api_secret = api_key.strip(), api_secret.strip()
    check_pair(api_key, api_secret)
    payload = json.dumps({"api_key": api_key, "api_secret": api_secret}).encode()
    try:
        _check_dir(cred_dir)
        data: Optional[bytes] = None
        if encrypt is not False:
            data, why = _encrypt(payload, systemd_creds)
            if data is None and encrypt:
                raise CredentialsError(f"cannot encrypt credentials for {name}: {why}")
        target, other = (enc_path, plain_path) if data is not None else (plain_path, enc_path)
        _write_atomic(target, data if data is not None else payload)
        if _is_file(other) or os.path.islink(other):
            os.unlink(other)
    except PermissionError as exc:
        raise PermissionDenied(f"cannot write credentials in {cred_dir}: {exc.strerror} "
                               f"(run `sudo gridbot credentials set {name}`)") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CredentialsError(f"{cred_dir}: symlink in the way; refusing to store keys") from None
        raise CredentialsError(f"cannot store credentials for {name} in {cred_dir}: {exc.strerror}") from None
    return target


def remove_keys(name: str, cred_dir: Path = CRED_DIR) -> bool:
    """Delete the instance's stored keys (either format). True if something was removed."""
    removed = False
    for p in key_paths(name, cred_dir):
        try:
            os.unlink(p)
            removed = True
        except FileNotFoundError:
            pass
        except PermissionError as exc:
            raise PermissionDenied(f"cannot remove {p}: {exc.strerror} (use sudo)") from None
    return removed
