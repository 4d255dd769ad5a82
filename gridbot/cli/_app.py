"""The Typer app, its global options and what every command shares.

The fleet ``Context`` (system or ``--user``) is Typer's context object: the callback stores it in
``ctx.obj`` and each command reads it from there; there is no module-level mutable state. The
commands themselves live in ``_lifecycle``, ``_inspect``, ``_views`` and ``_configure``, and are
registered, in the order ``--help`` shows them, by ``commands``.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .. import __version__, fleet
from .. import config as cfgmod
from ..errors import UsageError, exit_table_text

EPILOG = ("\b\nExit codes (the CLI's, then the bot's own as `gridbot run`, the unit's ExecStart):\n"
          + exit_table_text() + "\n\n\b\n--user may come before or after the command; GRIDBOT_USER=1 makes it the default.")

app = typer.Typer(
    help="Run and manage a fleet of grid-trading bots as systemd services (gridbot@NAME).",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
credentials_app = typer.Typer(help="API keys for live instances, stored as systemd credentials.", no_args_is_help=True)
app.add_typer(credentials_app, name="credentials")


def _complete_names(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion runs without the callback: the context object may not be there yet."""
    here = ctx.find_root().obj if isinstance(ctx.find_root().obj, fleet.Context) else fleet.Context()
    return [n for n in cfgmod.list_names(here.config_dir) if n.startswith(incomplete)]


NamesArg = typer.Argument(None, help="instance names (config file stems)", autocompletion=_complete_names,
                          show_default=False)
ConfigOpt = typer.Option(None, "-c", "--config", help="config path; its stem is the instance name", show_default=False)
JsonOpt = typer.Option(False, "--json", help="machine-readable output with stable keys")
TimeoutOpt = typer.Option(60.0, "--timeout", help="seconds to wait for each job")
AllOpt = typer.Option(False, "--all", help="every running instance (stop: one job on gridbot.target)")


def _version(value: bool) -> None:
    if value:
        print(f"gridbot {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    user: bool = typer.Option(False, "--user", envvar="GRIDBOT_USER",
                              help="talk to your per-user service manager instead of the system's (env GRIDBOT_USER=1)"),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="print the version"),
) -> None:
    ctx.obj = fleet.Context(user=user)


def _names(fc: fleet.Context, names: Optional[List[str]], paths: Optional[List[Path]], all_: bool = False, *,
           need: bool = True) -> list[str]:
    names, paths = names or [], paths or []
    if all_ and (names or paths):
        raise UsageError("give instance names or --all, not both")
    if all_:
        return []
    out = fleet.resolve(fc, names, paths)
    if need and not out:
        raise UsageError("no instance given: name one or more (or use --all where offered)")
    return out


def _one(fc: fleet.Context, name: Optional[str], paths: Optional[List[Path]], verb: str) -> str:
    """Commands about a single instance: NAME or one -c PATH."""
    targets = _names(fc, [name] if name is not None else [], paths)
    if len(targets) != 1:
        raise UsageError(f"{verb} takes exactly one instance")
    return targets[0]


def _skipped_note(units: list[str]) -> None:
    import sys

    for u in units:
        shown = u.encode("unicode_escape").decode("ascii")[:80]
        print(f"gridbot: skipping {shown!r}: not a name gridbot accepts (loaded by someone else; "
              f"`systemctl stop` it by hand)", file=sys.stderr)
