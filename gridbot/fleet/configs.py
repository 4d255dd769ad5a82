"""Config installation: read once, validate, clash-check, then install exactly the checked bytes.

``start -c`` (``read_incoming`` then ``install``) and ``gridbot edit`` (``edit_config``) never write
a byte before every check passed; ``validate_all`` is ``gridbot validate``'s orchestration; the
saved grid of a state is read here for the change preview.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Optional

from .. import config as cfgmod
# the account's shared rate limit and what one bot polls: one set of figures, enforced by the bot itself
from ..account.budget import ACCOUNT_REQUESTS_PER_MIN, poll_budget, requests_per_min
from ..errors import ConfigError, GridbotError, InstanceNotFound, PermissionDenied, UsageError
from .context import Context, write_file, resolve

if TYPE_CHECKING:
    from ..models import GridConfig


def require_configs(ctx: Context, names: list[str]) -> None:
    """InstanceNotFound (the same exit code on every verb) for a name without a config file."""
    for n in names:
        if not os.path.lexists(cfgmod.config_path(n, ctx.config_dir)):
            raise InstanceNotFound(f"no such instance '{n}': no {cfgmod.config_path(n, ctx.config_dir)}")


def validate(ctx: Context, names: list[str], *, feasible: bool = False) -> dict[str, "GridConfig"]:
    """Load and validate each config (ConfigError names the file and field); ``feasible``: and that
    the grid will trade (gridbot.feasibility, the checks the bot runs at start). System instances run
    as their own user: a config that user cannot read is refused here, not after the bot exits 78."""
    require_configs(ctx, names)
    good, bad = try_load(((n, cfgmod.config_path(n, ctx.config_dir)) for n in names),
                         readable=ctx.service_reads, feasible=feasible)
    if bad:  # every file's errors at once, not the first file's only
        raise ConfigError("; ".join(bad[n] for n in names if n in bad))
    return {n: good[n] for n in names}


def try_load(sources: Iterable[tuple[str, Path]], readable: bool = False, *, feasible: bool = False,
             ) -> tuple[dict[str, "GridConfig"], dict[str, str]]:
    """Load (name, path) pairs without stopping at the first bad one: (valid, name -> error).
    ``readable``: also require that the instance's own user can read the file (installed configs)."""
    good, bad = {}, {}
    for name, path in sources:
        try:
            good[name] = cfgmod.load_file(path, feasible=feasible)
            if readable:
                cfgmod.service_readable(path)
        except ConfigError as exc:
            good.pop(name, None)
            bad[name] = str(exc)
    return good, bad


def require_files(paths: Iterable[Path]) -> None:
    """``-c PATH`` that is not there is a command-line mistake (exit 2, as Click's own path checks).
    Whatever is there (a symlink, a FIFO, a directory) is refused by ``config.read_regular``."""
    for path in paths:
        if not os.path.lexists(path):
            raise UsageError(f"-c {path}: no such config file")


def load_all(ctx: Context, skip: Iterable[str] = (), *, feasible: bool = False,
             ) -> tuple[dict[str, "GridConfig"], dict[str, str]]:
    """Every config in the directory but ``skip``: (valid ones, name -> error for invalid ones)."""
    skipped = set(skip)
    return try_load(((n, cfgmod.config_path(n, ctx.config_dir))
                     for n in cfgmod.list_names(ctx.config_dir) if n not in skipped),
                    readable=ctx.service_reads, feasible=feasible)


def check_clashes(configs: dict[str, "GridConfig"]) -> None:
    """Two instances may not share a status port, nor trade one symbol on one live account, and
    the live instances of one account must poll within that account's shared rate limit."""
    ports: dict[int, str] = {}
    books: dict[tuple[str, str, str], str] = {}
    polling: dict[tuple[str, str], float] = {}
    problems = []
    for name, cfg in sorted(configs.items()):
        if cfg.web_port is not None:
            if cfg.web_port in ports:
                problems.append(f"{ports[cfg.web_port]} and {name} both use web_port {cfg.web_port}")
            ports.setdefault(cfg.web_port, name)
        if cfg.exchange != "paper":  # each paper instance has its own simulated account
            key = (cfg.exchange, cfg.backpack.account, cfg.symbol)
            if key in books:
                problems.append(f"{books[key]} and {name} both trade {cfg.symbol} on {cfg.exchange} account '{key[1]}'")
            books.setdefault(key, name)
            account = (cfg.exchange, cfg.backpack.account)
            polling[account] = polling.get(account, 0.0) + requests_per_min(cfg.backpack.poll_interval_s, cfg.reconcile_interval_s)
    budget = poll_budget()
    for (exchange, account), per_min in sorted(polling.items()):
        if per_min > budget:
            problems.append(f"the {exchange} instances on account '{account}' would poll ~{per_min:.0f} requests/min, "
                            f"over {budget:.0f} of the {ACCOUNT_REQUESTS_PER_MIN}/min the account shares: "
                            f"raise backpack.poll_interval_s or reconcile_interval_s")
    if problems:
        raise ConfigError("clash: " + "; ".join(problems))


@dataclass(frozen=True)
class Incoming:
    """A ``-c PATH`` config, read once: exactly these bytes are validated and installed."""

    name: str
    path: Path
    target: Path
    data: bytes
    cfg: "GridConfig"
    changed: bool  # differs from (or there is no) installed config


def read_incoming(ctx: Context, paths: list[Path], force: bool = False) -> list[Incoming]:
    """``start -c path/NAME.json``: read and validate every file, once each; writes nothing.

    An existing different config needs ``force``. ``install`` writes the very bytes checked here.
    """
    out: list[Incoming] = []
    for path in paths:
        name = resolve(ctx, [], [path])[0]
        if any(i.name == name for i in out):
            raise UsageError(f"-c {path}: two config files for instance '{name}'")
        require_files([path])
        data, cfg = cfgmod.read_and_parse(path, feasible=True)
        target = cfgmod.config_path(name, ctx.config_dir)
        try:
            current: Optional[bytes] = cfgmod.read_regular(target)
        except ConfigError:
            current = None
            if os.path.lexists(target) and not force:
                raise UsageError(f"{target} exists but is not a readable regular file; use --force to replace it") from None
        if current is not None and current != data and not force:
            raise UsageError(f"{target} exists and differs from {path}; use --force to replace it")
        out.append(Incoming(name, Path(path), target, data, cfg, current != data))
    return out


def install(incoming: Iterable[Incoming]) -> None:
    """Write the checked bytes (atomically, world-readable: configs hold no secrets)."""
    for i in incoming:
        if i.changed:
            write_file(i.target, i.data)


NEW_CONFIG = b"""{
  "$schema": "file:///usr/local/share/gridbot/config.schema.json",
  "exchange": "paper",
  "symbol": "SOL_USDC",
  "lower_price": 100,
  "upper_price": 200,
  "levels": 10,
  "qty_per_level": 0.1
}
"""


def edit_config(ctx: Context, name: str, editor: Callable[[Path], int], again: Callable[[str], bool], *,
                new: bool = False) -> bool:
    """``gridbot edit NAME``, as ``visudo``/``systemctl edit`` do it: the editor gets a private copy,
    the result is read once, validated and clash-checked, and only then installed atomically.
    A bad result keeps the installed file (``again(why)`` may send the user back to the editor).
    Refused before the editor opens: an instance without a config (unless ``new``: then a starting
    config is offered), and a user who could not install the result. Returns whether it changed."""
    target = cfgmod.config_path(name, ctx.config_dir)
    exists = os.path.lexists(target)
    if not exists and not new:
        raise InstanceNotFound(f"no such instance '{name}': no {target}; `gridbot edit --new {name}` writes a new one")
    if not os.access(ctx.config_dir if ctx.config_dir.exists() else ctx.config_dir.parent, os.W_OK):
        raise PermissionDenied(f"to edit {name} you need root (sudo): the result is installed in {ctx.config_dir}")
    original: Optional[bytes] = cfgmod.read_regular(target) if exists else None
    tmpdir = tempfile.mkdtemp(prefix="gridbot-edit-")  # 0700: only we (and root) see the draft
    draft = Path(tmpdir) / f"{name}.json"
    try:
        draft.write_bytes(original if original is not None else NEW_CONFIG)
        while True:
            rc = editor(draft)
            if rc != 0:
                how = f"was killed by signal {-rc}" if rc < 0 else f"exited with status {rc}"
                raise GridbotError(f"the editor {how}; {target} unchanged")
            data = cfgmod.read_regular(draft)
            if data == original:
                return False
            try:
                cfg = cfgmod.parse_config(data, str(target), feasible=True)
                others, _bad = load_all(ctx, skip=[name])
                check_clashes({**others, name: cfg})
                break
            except ConfigError as exc:
                if not again(str(exc)):
                    raise ConfigError(f"{exc}; {target} unchanged") from None
        now = cfgmod.read_regular(target) if os.path.lexists(target) else None
        if now != original:
            raise UsageError(f"{target} changed while you were editing; {target} unchanged, run `gridbot edit {name}` again")
        write_file(target, data)
        return True
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def saved_grid(ctx: Context, name: str) -> tuple[Optional[dict], Optional[dict]]:
    """(grid fields, strategy snapshot) the instance's state was built with; (None, None) if it has
    none or it cannot be read (then no preview: the start itself is unaffected). Read-only."""
    import json
    import sqlite3

    db = ctx.state_dir(name) / "gridbot.sqlite"
    try:
        if not db.is_file():  # the state directory is 0700: an operator cannot look (PermissionError)
            return None, None
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
        try:
            rows = dict(con.execute("SELECT key, value FROM kv WHERE key IN ('grid', 'strategy')").fetchall())
        finally:
            con.close()
        return (json.loads(rows["grid"]) if "grid" in rows else None,
                json.loads(rows["strategy"]) if "strategy" in rows else None)
    except (sqlite3.Error, OSError, ValueError):
        return None, None


def unreadable_state(ctx: Context, name: str) -> bool:
    """The state directory exists but this user cannot read it (0700, owned by the instance's own
    user, under the root-only /var/lib/private)."""
    d = ctx.state_root / name
    try:
        return d.is_dir() and not os.access(d, os.R_OK | os.X_OK)
    except OSError:
        return True


def change_plans(ctx: Context, configs: dict[str, "GridConfig"]) -> list:
    """preview.Plan for each instance whose next start re-grids (config grid fields changed)."""
    from .. import preview

    plans = []
    for name, cfg in configs.items():
        grid, snap = saved_grid(ctx, name)
        try:
            p = preview.plan(name, cfg, grid, snap, cfg.paper.taker_fee if cfg.exchange == "paper" else Decimal("0.001"))
        except (KeyError, TypeError, ValueError, ArithmeticError):
            continue  # a snapshot from another version: no preview rather than a crash
        if p is not None:
            plans.append(p)
    return plans


def configured(ctx: Context) -> list[str]:
    """Every instance with a config file (``start --all``)."""
    return cfgmod.list_names(ctx.config_dir)


@dataclass
class ValidateReport:
    """What ``gridbot validate`` found: name -> error (None: valid), the named instances without a
    config (name -> message), and each valid config's band warnings."""

    results: dict[str, Optional[str]]
    gone: dict[str, str]
    warnings: dict[str, list[str]]


def validate_report(ctx: Context, names: Iterable[str], paths: Iterable[Path], all_: bool, *,
                    offline: bool = False) -> ValidateReport:
    """``gridbot validate``: every named config (or with ``all_`` every installed one, and the clashes
    between them), each file's errors at once; ``offline`` skips the live configs' market look-up
    (``bands.live_check``: the start-up checks on today's market rules, the price band)."""
    names, paths = list(names), list(paths)
    missing: list[str] = []
    if all_:
        if names or paths:
            raise UsageError("give instance names or --all, not both")
        good, bad = load_all(ctx, feasible=True)
        results: dict[str, Optional[str]] = {n: None for n in good} | bad
        if not results:
            raise UsageError(f"no configs in {ctx.config_dir}: nothing to validate")
        try:
            check_clashes(good)
        except ConfigError as exc:
            results["(fleet)"] = str(exc)
    else:
        require_files(paths)
        sources = [(resolve(ctx, [], [p])[0], p) for p in paths]
        installed = []
        for n in resolve(ctx, names):
            path = cfgmod.config_path(n, ctx.config_dir)
            if os.path.lexists(path):
                installed.append((n, path))
            else:
                missing.append(n)
        if not sources and not installed and not missing:
            raise UsageError("no instance given: name one or more, -c PATH, or --all")
        good, bad = try_load(sources, feasible=True)
        good_installed, bad_installed = try_load(installed, readable=ctx.service_reads, feasible=True)
        good.update(good_installed)
        bad.update(bad_installed)
        sources += installed
        results = {n: bad.get(n) for n, _path in sources}
    gone = {n: f"no such instance '{n}': no {cfgmod.config_path(n, ctx.config_dir)}" for n in missing}
    warnings: dict[str, list[str]] = {}
    if not offline:  # a live grid against its market today: the bot's start-up checks, on public data
        from ..bands import live_check

        where = dict(sources) if not all_ else {}
        for n, c in good.items():
            errors, warnings[n] = live_check(c)
            if errors:
                results[n] = f"{where.get(n) or cfgmod.config_path(n, ctx.config_dir)}: {'; '.join(errors)}"
        warnings = {n: w for n, w in warnings.items() if w}
    return ValidateReport(results, gone, warnings)
