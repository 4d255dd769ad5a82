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
   the service; ``load_keys`` reads it there. A fallback ``SetCredential=backpack:none`` value
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
from typing import Mapping, Optional, TextIO

from ._units import check_name, instance_of
from .errors import CredentialsError, PermissionDenied
from .paths import CREDENTIALS_DIR, write_atomic

CRED_DIR = CREDENTIALS_DIR
CRED_ID = "backpack"  # the credential's name: $CREDENTIALS_DIRECTORY/backpack, --name=backpack
ENCRYPTED_SUFFIX = ".cred"
PLAIN_SUFFIX = ".key"
ABSENT_VALUES = {"", "none"}  # SetCredential=backpack:none is the "no keys" fallback
MAX_BYTES = 16 * 1024


def _missing(name: str) -> CredentialsError:
    return CredentialsError(
        f"instance {name} trades on backpack but has no credentials: run `sudo gridbot credentials set {name}`")


# --- parsing and checking ----------------------------------------------------------------------

def parse_keys(text: str) -> tuple[str, str]:
    """``{"api_key": …, "api_secret": …}`` or two lines (key, then secret) -> (key, secret).

    Raises CredentialsError without echoing any of the text.
    """
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
            key, secret = data["api_key"], data["api_secret"]
        except (ValueError, KeyError, TypeError):
            raise CredentialsError('credentials must be JSON {"api_key": "...", "api_secret": "..."} '
                                   "or two lines: API key, then API secret") from None
        if not isinstance(key, str) or not isinstance(secret, str):
            raise CredentialsError("api_key and api_secret must be strings")
    else:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if len(lines) != 2:
            raise CredentialsError('credentials must be JSON {"api_key": "...", "api_secret": "..."} '
                                   f"or exactly two lines (API key, then API secret); got {len(lines)} lines")
        key, secret = lines
    key, secret = key.strip(), secret.strip()
    check_pair(key, secret)
    return key, secret


def check_pair(api_key: str, api_secret: str) -> None:
    """Raise CredentialsError unless the secret is a valid ED25519 seed whose public key is the API key."""
    from .exchange import _sign  # cryptography only when keys are handled

    if not api_key or not api_secret:
        raise CredentialsError("API key and API secret must both be given")
    private = _sign.load_private_key(api_secret)
    if _sign.public_key_b64(private) != api_key:
        raise CredentialsError("the API key is not the public key of the API secret "
                               "(Backpack's API key is the base64 ED25519 public key); check which is which")


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


# --- inside the service ------------------------------------------------------------------------

def instance_name(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The instance a service runs as, from ``$CREDENTIALS_DIRECTORY`` (…/gridbot@NAME.service)."""
    env = os.environ if environ is None else environ
    d = env.get("CREDENTIALS_DIRECTORY")
    return instance_of(Path(d).name) if d else None


def load_keys(name: Optional[str] = None, *, environ: Optional[Mapping[str, str]] = None) -> tuple[str, str]:
    """(api_key, api_secret) from ``$CREDENTIALS_DIRECTORY/backpack``; CredentialsError if absent."""
    env = os.environ if environ is None else environ
    name = name or instance_name(env) or "NAME"
    d = env.get("CREDENTIALS_DIRECTORY")
    if not d:
        raise _missing(name)
    path = Path(d) / CRED_ID
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise _missing(name) from None
    except OSError as exc:
        raise CredentialsError(f"instance {name}: cannot read credential {path}: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise CredentialsError(f"instance {name}: credential {path} is larger than {MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialsError(f"instance {name}: credential {path} is not UTF-8 text "
                               "(an encrypted file loaded with LoadCredential= instead of LoadCredentialEncrypted=?); "
                               f"store them again with `sudo gridbot credentials set {name}`") from None
    if text.strip().lower() in ABSENT_VALUES:
        raise _missing(name)
    try:
        return parse_keys(text)
    except CredentialsError as exc:
        raise CredentialsError(f"instance {name}: credential {path}: {exc}; "
                               f"store them again with `sudo gridbot credentials set {name}`") from None


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
