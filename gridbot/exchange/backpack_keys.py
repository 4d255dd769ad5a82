"""Backpack API keys inside the bot: parse them, check the pair, load them from systemd's credential.

The Backpack adapter's side of the key path described in ``gridbot.credentials`` (which keeps the
host side: reading keys from an operator, ``systemd-creds``, the drop-in directive). systemd
copies the decrypted value to ``$CREDENTIALS_DIRECTORY/backpack``, readable only by the service;
``load_keys`` reads it there. A fallback ``SetCredential=backpack:none`` value counts as absent.
A paper instance never calls ``load_keys``. Nothing here imports the CLI, fleet or systemd.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Optional

from .._units import instance_of
from ..errors import CredentialsError

CRED_ID = "backpack"  # the credential's name: $CREDENTIALS_DIRECTORY/backpack, --name=backpack
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
    from . import _sign  # cryptography only when keys are handled

    if not api_key or not api_secret:
        raise CredentialsError("API key and API secret must both be given")
    private = _sign.load_private_key(api_secret)
    if _sign.public_key_b64(private) != api_key:
        raise CredentialsError("the API key is not the public key of the API secret "
                               "(Backpack's API key is the base64 ED25519 public key); check which is which")


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
