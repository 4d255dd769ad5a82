"""Credential drop-ins: a live instance's keys (``gridbot.credentials``) and the unit drop-in that
loads them and opens its network to public addresses only."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from .. import config as cfgmod
from .._units import check_name
from ..errors import ConfigError, PermissionDenied, UsageError
from .context import Context, write_file

if TYPE_CHECKING:
    from ..models import GridConfig


LIVE_DROPIN = "50-live.conf"


def has_live_dropin(ctx: Context, name: str) -> bool:
    return _dropin_path(ctx, name).exists()


def _dropin_path(ctx: Context, name: str) -> Path:
    return ctx.dropin_dir(name) / LIVE_DROPIN


# What a live bot may never reach unless the operator allows it (`credentials set --allow CIDR`):
# link-local (cloud metadata at 169.254.169.254, fe80::/10), AWS's IPv6 metadata address, and the
# private, shared and unique-local ranges of the host's own networks. IPAddressAllow= wins over
# IPAddressDeny=, so the template's `localhost` stays reachable (the status port, a local proxy).
LIVE_DENY = ("link-local", "169.254.0.0/16", "fd00:ec2::254/128", "10.0.0.0/8", "172.16.0.0/12",
             "192.168.0.0/16", "100.64.0.0/10", "fc00::/7", "multicast")


def live_dropin(name: str, directive: str, allow: Iterable[str] = ()) -> str:
    """The drop-in text of a live instance: deny list, operator's exceptions, credential line."""
    import ipaddress

    nets = []
    for i, a in enumerate(allow, 1):
        try:
            nets.append(str(ipaddress.ip_network(a, strict=False)))
        except ValueError:  # not echoed: it may be anything pasted in the wrong place
            raise UsageError(f"--allow (#{i}): not an IP address or CIDR network") from None
    lines = [f"# written by `gridbot credentials set {name}`: a live instance may reach public addresses",
             "# (its exchange), not link-local/cloud metadata or private ranges, and gets its API keys",
             "# as a systemd credential.", "[Service]", "IPAddressDeny=", "IPAddressDeny=" + " ".join(LIVE_DENY)]
    if nets:
        lines.append("# allowed by the operator (--allow)")
        lines.append("IPAddressAllow=" + " ".join(nets))
    lines.append(directive)
    return "\n".join(lines) + "\n"


def set_credentials(ctx: Context, name: str, api_key: str, api_secret: str, allow: Iterable[str] = ()) -> Path:
    """Store the keys root-only (encrypted where the host can), then give the instance a drop-in
    that loads them and opens the network to public addresses. Only for a live config: a paper
    instance needs no keys, and the drop-in would open its network for nothing."""
    from .. import credentials

    if ctx.user:
        raise PermissionDenied("credentials are system-wide only (root keeps them): use sudo without --user")
    check_name(name)
    cfg = cfgmod.load(name, ctx.config_dir)
    if cfg.exchange == "paper":
        raise ConfigError(f"{name} is a paper instance: it needs no credentials (set \"exchange\" in "
                          f"{cfgmod.config_path(name, ctx.config_dir)} first)")
    live_dropin(name, "", allow)  # a bad --allow is refused before the keys are stored
    stored = credentials.store_keys(name, api_key, api_secret)
    directive = credentials.credential_directive(name)
    write_file(_dropin_path(ctx, name), live_dropin(name, directive or "", allow).encode())
    with ctx.manager() as m:
        m.reload()
    return stored


def remove_credentials(ctx: Context, name: str) -> bool:
    from .. import credentials

    check_name(name)
    removed = credentials.remove_keys(name)
    dropin = _dropin_path(ctx, name)
    if dropin.exists():
        try:
            dropin.unlink()
        except PermissionError:
            raise PermissionDenied(f"cannot remove {dropin}: permission denied (needs root: sudo)") from None
        removed = True
        with ctx.manager() as m:
            m.reload()
    return removed


def check_credentials(ctx: Context, configs: dict[str, "GridConfig"]) -> None:
    for name, cfg in configs.items():
        if cfg.exchange != "paper" and not has_live_dropin(ctx, name):
            raise ConfigError(
                f"{name} trades on {cfg.exchange} but has no credentials: run `sudo gridbot credentials set {name}`"
            )
