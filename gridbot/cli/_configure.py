"""Config and credentials commands: edit, schema, credentials set/rm, and the two that delete on
purpose, rm and reset (each asks first; without a terminal only with --yes)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .. import config as cfgmod
from .. import fleet
from ..errors import ConfigError, UsageError
from . import _render as r
from ._app import NamesArg, TimeoutOpt, _complete_names, _names


def rm(ctx: typer.Context, names: Optional[List[str]] = NamesArg,
       purge: bool = typer.Option(False, "--purge", help="also the state directory, credentials and drop-ins"),
       yes: bool = typer.Option(False, "--yes", "-y", help="do not ask"),
       timeout: float = TimeoutOpt) -> None:
    """Remove instances: stop, disable and delete the config (asks first). --purge: also state, keys, drop-ins."""
    fc: fleet.Context = ctx.obj
    targets = _names(fc, names, None)
    fleet.check_can_remove(fc, targets)
    fleet.require_known(fc, targets)
    what = "stop, disable and delete the config of" + (" (and purge the state, credentials and drop-ins of)"
                                                       if purge else "")
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"not a terminal: pass --yes to remove {', '.join(targets)}")
        if not typer.confirm(f"{what} {', '.join(targets)}?"):
            raise typer.Exit(1)
    removed = fleet.remove(fc, targets, purge=purge, timeout=timeout)
    for n, paths_ in removed.items():
        print(f"{n}: removed" + (f" ({', '.join(paths_)})" if paths_ else ""))
        if not purge and fc.state_dir(n).exists():
            r.note(f"{n}: state kept in {fc.state_dir(n)}; a new instance of that name would reuse it "
                   f"(`gridbot rm --purge {n}` removes it)")


def reset(ctx: typer.Context, name: str = typer.Argument(..., autocompletion=_complete_names, show_default=False),
          yes: bool = typer.Option(False, "--yes", "-y", help="do not ask")) -> None:
    """Start a stopped instance over: delete its state on purpose. A live instance's next start
    then cancels its own old open orders (the bot holds the keys) and places a fresh grid."""
    fc: fleet.Context = ctx.obj
    n = fleet.resolve(fc, [name])[0]
    plan = fleet.reset_plan(fc, n)
    if not yes and not sys.stdin.isatty():
        raise UsageError(f"not a terminal: pass --yes to reset {n}")
    what = f"{len(plan.state_entries)} entries in {plan.state_dir}" if plan.state_entries else "no state"
    print(f"{n}: deletes its state ({what})")
    if plan.live:
        print(f"{n}: retires its client-id epochs ({', '.join(map(str, plan.epochs)) or 'none recorded'}); its next "
              f"start cancels its open orders on {plan.symbol} carrying them")
    if not yes and not typer.confirm(f"reset {n}?"):
        raise typer.Exit(1)
    for line in fleet.reset_apply(fc, plan):
        print(f"{n}: {line}")


def credentials_set(ctx: typer.Context, name: str = typer.Argument(..., autocompletion=_complete_names),
                    allow: Optional[List[str]] = typer.Option(
                        None, "--allow", help="an address or CIDR the bot may reach although it is private or "
                                              "link-local (e.g. a proxy on the LAN); repeatable")) -> None:
    """Store NAME's API key and secret (from a pipe: JSON or two lines; else a no-echo prompt)."""
    fc: fleet.Context = ctx.obj
    from .. import credentials
    from .._nodump import forbid_core_dumps

    forbid_core_dumps()  # the secret is in this process's memory from here on

    n = fleet.resolve(fc, [name])[0]
    cfg = fleet.validate(fc, [n])[n]  # a paper or broken config is refused before the keys are asked for
    if cfg.exchange == "paper":
        raise ConfigError(f"{n} is a paper instance: it needs no credentials (set \"exchange\" first)")
    fleet.live_dropin(n, "", allow or ())
    key, secret = credentials.read_keys()
    stored = fleet.set_credentials(fc, n, key, secret, allow or ())
    kind = "encrypted with systemd-creds" if credentials.is_encrypted(stored) else "plain, root-only 0600 (systemd-creds unavailable)"
    print(f"{n}: credentials stored in {stored} ({kind}); restart the instance to use them")


def credentials_rm(ctx: typer.Context, name: str = typer.Argument(..., autocompletion=_complete_names)) -> None:
    """Delete NAME's stored API keys and its live drop-in."""
    fc: fleet.Context = ctx.obj
    n = fleet.resolve(fc, [name])[0]
    if fleet.remove_credentials(fc, n):
        print(f"{n}: credentials removed")
    else:
        fleet.require_known(fc, [n])  # nothing removed: a name gridbot does not know is exit 5, as everywhere
        print(f"{n}: had no credentials")


def _editor(path: Path) -> int:
    import os
    import shlex
    import shutil

    cmd = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not cmd and not sys.stdin.isatty():  # the default editor would wait for a terminal forever
        raise UsageError("not a terminal: the default editor needs one; set $EDITOR to a command that edits "
                         "the file without one")
    argv = shlex.split(cmd) if cmd else [next((e for e in ("editor", "nano", "vi") if shutil.which(e)), "vi")]
    try:
        return subprocess.call([*argv, str(path)])
    except OSError as exc:
        raise UsageError(f"cannot run the editor {argv[0]!r}: {exc.strerror}; set $EDITOR") from None


def _edit_again(why: str) -> bool:
    if not sys.stdin.isatty():
        return False
    print(f"gridbot: error: {why}", file=sys.stderr)
    return typer.confirm("edit again? (no keeps the installed config)", default=True)


def edit(ctx: typer.Context, name: str = typer.Argument(..., autocompletion=_complete_names, show_default=False),
         new: bool = typer.Option(False, "--new", help="NAME has no config yet: start from a paper example")) -> None:
    """Edit NAME's config safely: a private copy in $EDITOR, validated, then installed atomically."""
    fc: fleet.Context = ctx.obj
    n = fleet.resolve(fc, [name])[0]
    if fleet.edit_config(fc, n, _editor, _edit_again, new=new):
        print(f"{n}: config updated; `gridbot restart {n}` applies it to a running instance")
    else:
        print(f"{n}: unchanged")


def schema() -> None:
    """Print the config JSON Schema (for editors)."""
    r.emit_json(cfgmod.schema())
