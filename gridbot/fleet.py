"""Fleet operations: what each CLI command does, between the config directory and systemd.

The CLI parses and prints; this module decides. Every check on user input (names, configs,
clashes) happens here *before* the first D-Bus call, so a bad request changes nothing.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Optional

from . import account as acct
from . import config as cfgmod
# the account's shared rate limit and what one bot polls: one set of figures, enforced by the bot itself
from .account import ACCOUNT_REQUESTS_PER_MIN, poll_budget, requests_per_min
from ._units import PATTERN, TEMPLATE, check_name, instance_of, unit_name
from .errors import ConfigError, GridbotError, InstanceNotFound, JobFailed, NotRunning, PermissionDenied, UsageError
from . import paths
from .systemd import Manager, UnitRow, enabled_instances

if TYPE_CHECKING:
    from .models import GridConfig

LIVE_DROPIN = "50-live.conf"


@dataclass
class Context:
    """Which manager and directories a command works against (system, or --user)."""

    user: bool = False

    @property
    def config_dir(self) -> Path:
        return paths.config_dir(self.user)

    @property
    def service_reads(self) -> bool:
        """Whether bots of another uid read this config directory (the system one, DynamicUser=):
        then a config must be readable by them, not only by the root who validates it."""
        return not self.user and self.config_dir == paths.SYSTEM_CONFIG_DIR

    @property
    def state_root(self) -> Path:
        return paths.state_root(self.user)

    def state_dir(self, name: str) -> Path:
        """Where NAME's state really is (paths.state_dir: a dynamic user's is under /var/lib/private)."""
        return paths.state_dir(name, self.user, root=self.state_root)

    @property
    def unit_dir(self) -> Path:
        return paths.unit_dirs(self.user)[0]

    def dropin_dir(self, name: str) -> Path:
        return paths.dropin_dir(name, self.user)

    def manager(self) -> Manager:
        return Manager(user=self.user)


# -- names and configs --------------------------------------------------------------------------
def resolve(ctx: Context, names: Iterable[str], paths: Iterable[Path] = ()) -> list[str]:
    """NAME arguments plus ``-c PATH`` options (stem = name), checked, de-duplicated, in order."""
    stems = []
    for p in paths:
        if not str(p).endswith(".json"):
            raise UsageError(f"-c {p}: a config path must end in .json (its stem is the instance name)")
        stems.append(Path(p).stem)
    out: list[str] = []
    for n in [*names, *stems]:
        check_name(n)
        if n not in out:
            out.append(n)
    return out


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


def preflight(ctx: Context, names: list[str], incoming: Iterable["Incoming"] = ()) -> dict[str, "GridConfig"]:
    """Before start/restart/enable: valid configs, no clash with any other configured instance,
    and live instances have credentials; the grids are feasible. ``incoming`` (from ``start -c``,
    read and checked once by read_incoming) stand in for the installed configs of their names:
    checked as if installed, before they are. Raises before anything is written or sent to systemd."""
    new = {i.name: i.cfg for i in incoming}
    configs = {**validate(ctx, [n for n in names if n not in new], feasible=True),
               **{n: new[n] for n in names if n in new}}
    others, _bad = load_all(ctx, skip=configs)
    check_clashes({**others, **configs})
    check_credentials(ctx, configs)
    return configs


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
            _replace_file(i.target, i.data)


NEW_CONFIG = b"""{
  "$schema": "https://gridbot.invalid/schema/config.json",
  "exchange": "paper",
  "symbol": "SOL_USDC",
  "lower_price": 100,
  "upper_price": 200,
  "levels": 10,
  "qty_per_level": 0.1
}
"""


def edit_config(ctx: Context, name: str, editor: Callable[[Path], int], again: Callable[[str], bool]) -> bool:
    """``gridbot edit NAME``, as ``visudo``/``systemctl edit`` do it: the editor gets a private copy,
    the result is read once, validated and clash-checked, and only then installed atomically.
    A bad result keeps the installed file (``again(why)`` may send the user back to the editor).
    Returns whether the config changed."""
    target = cfgmod.config_path(name, ctx.config_dir)
    original: Optional[bytes] = cfgmod.read_regular(target) if os.path.lexists(target) else None
    tmpdir = tempfile.mkdtemp(prefix="gridbot-edit-")  # 0700: only we (and root) see the draft
    draft = Path(tmpdir) / f"{name}.json"
    try:
        draft.write_bytes(original if original is not None else NEW_CONFIG)
        while True:
            rc = editor(draft)
            if rc != 0:
                raise UsageError(f"the editor exited with status {rc}; {target} unchanged")
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
        _replace_file(target, data)
        return True
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _replace_file(target: Path, data: bytes) -> None:
    """Atomically put a world-readable file (configs and drop-ins hold no secrets)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        paths.write_atomic(target, data, 0o644)
    except PermissionError:
        raise PermissionDenied(f"cannot write {target}: permission denied (needs root: sudo)") from None


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
    from . import credentials

    if ctx.user:
        raise UsageError("credentials are system-wide only: use sudo without --user")
    check_name(name)
    cfg = cfgmod.load(name, ctx.config_dir)
    if cfg.exchange == "paper":
        raise ConfigError(f"{name} is a paper instance: it needs no credentials (set \"exchange\" in "
                          f"{cfgmod.config_path(name, ctx.config_dir)} first)")
    live_dropin(name, "", allow)  # a bad --allow is refused before the keys are stored
    stored = credentials.store_keys(name, api_key, api_secret)
    directive = credentials.credential_directive(name)
    _replace_file(_dropin_path(ctx, name), live_dropin(name, directive or "", allow).encode())
    with ctx.manager() as m:
        m.reload()
    return stored


def remove_credentials(ctx: Context, name: str) -> bool:
    from . import credentials

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
    from . import preview

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


# -- lifecycle ----------------------------------------------------------------------------------
def known(ctx: Context, m: Manager, names: list[str]) -> None:
    """Raise InstanceNotFound unless each name has a config or a unit systemd knows of."""
    configured = set(cfgmod.list_names(ctx.config_dir))
    unknown = [n for n in names if n not in configured]
    if not unknown:
        return
    rows = {r.name: r for r in m.rows(unknown, set())}
    for n in unknown:
        r = rows.get(n)
        if r is None or r.load_state != "loaded" or (r.active_state == "inactive" and not r.since_us):
            raise InstanceNotFound(f"no such instance '{n}': no {ctx.config_dir / (n + '.json')} and no unit")


def ensure_template(m: Manager) -> None:
    if not m.template_loaded():
        raise GridbotError(f"{TEMPLATE} is not installed: run `sudo ./packaging/install.sh` first")


@dataclass(frozen=True)
class JobOutcome:
    name: str
    result: str
    row: Optional[UnitRow] = None

    @property
    def ok(self) -> bool:
        return self.result == "done"


def run_jobs(ctx: Context, method: str, names: list[str], timeout: float,
             on_done: Optional[Callable[[JobOutcome], None]] = None,
             on_wait: Optional[Callable[[list[str], float], None]] = None) -> list[JobOutcome]:
    """Queue one job per instance, all at once; ``on_done`` hears of each the moment it ends
    (``on_wait(pending names, seconds)`` about twice a second while some are left)."""
    with ctx.manager() as m:
        ensure_template(m)
        if method != "StartUnit":
            known(ctx, m, names)
        if method == "ReloadUnit":
            idle = [r.name for r in m.rows(names, set()) if r.active_state not in ("active", "reloading")]
            if idle:
                raise NotRunning(f"not running, nothing to reload: {', '.join(idle)} (start it instead)")
        outcomes: dict[str, JobOutcome] = {}

        def done(unit: str, result: str) -> None:
            name = instance_of(unit) or unit
            row = m.rows([name], set())[0] if result != "done" else None
            outcomes[name] = JobOutcome(name, result, row)
            if on_done is not None:
                on_done(outcomes[name])

        waiting = None
        if on_wait is not None:
            waiting = lambda units, s: on_wait([instance_of(u) or u for u in units], s)  # noqa: E731
        m.run_jobs(method, [unit_name(n) for n in names], timeout, done, waiting)
        return [outcomes[n] for n in names]


def configured(ctx: Context) -> list[str]:
    """Every instance with a config file (``start --all``)."""
    return cfgmod.list_names(ctx.config_dir)


def require_known(ctx: Context, names: list[str]) -> None:
    """InstanceNotFound unless each name has a config or a unit systemd knows of (logs, rm)."""
    if not names:
        return
    with ctx.manager() as m:
        known(ctx, m, names)


def active(ctx: Context, names: list[str]) -> list[str]:
    """Those of ``names`` whose unit is running (active, activating or reloading)."""
    with ctx.manager() as m:
        return [r.name for r in m.rows(names, set()) if r.active_state in ("active", "activating", "reloading")]


def valid_names(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """(names gridbot accepts, names it would refuse): a unit like ``gridbot@--help.service`` that
    someone loaded is skipped by commands over all instances, never passed on, never fatal."""
    good, bad = [], []
    for n in names:
        try:
            good.append(check_name(n))
        except UsageError:
            bad.append(n)
    return good, bad


def instances_in_state(ctx: Context, *states: str, skipped: Optional[list[str]] = None) -> list[str]:
    """Loaded instances in one of ``states``; units with a name gridbot refuses go to ``skipped``."""
    with ctx.manager() as m:
        good, bad = valid_names(m.loaded_instances())
        if skipped is not None:
            skipped.extend(unit_name(n, checked=False) for n in bad)
        return [r.name for r in m.rows(good, set()) if r.active_state in states]


def stop_all(ctx: Context, timeout: float, foreign: Optional[list[str]] = None) -> list[str]:
    """One job on gridbot.target; PartOf= propagates the stop to every instance. Loaded units with a
    name gridbot refuses go to ``foreign`` (named, never reported as gridbot's own)."""
    with ctx.manager() as m:
        good, bad = valid_names(m.loaded_instances())
        if foreign is not None:
            foreign.extend(unit_name(n, checked=False) for n in bad)
        before = [r.name for r in m.rows(good, set())
                  if r.active_state in ("active", "activating", "reloading", "deactivating")]
        result = m.stop_target(timeout)
        if result != "done":
            raise JobFailed(f"stopping gridbot.target: job {result}")
        still = [r.name for r in m.rows(before, set()) if r.active_state in ("active", "activating", "deactivating")]
        if still:
            raise JobFailed(f"still running after stop-all: {', '.join(still)}")
        return before


def check_can_remove(ctx: Context, names: list[str]) -> None:
    """``rm`` changes files under the config and unit directories: refuse up front, naming the right."""
    for d in (ctx.config_dir, ctx.unit_dir):
        if d.exists() and not os.access(d, os.W_OK):
            raise PermissionDenied(f"to rm {', '.join(names)} you need root (sudo): it removes files in {d}")


def remove(ctx: Context, names: list[str], *, purge: bool, timeout: float) -> dict[str, list[str]]:
    """``rm``: stop, disable, forget the failed state and delete the config; ``purge`` also the
    state directory, the credentials and the instance's drop-ins. Returns name -> what was removed.

    Everything that can refuse (names, permission, unknown instance) is checked before the first
    change; a stop that fails leaves every file in place.
    """
    check_can_remove(ctx, names)
    out: dict[str, list[str]] = {n: [] for n in names}
    with ctx.manager() as m:
        ensure_template(m)
        known(ctx, m, names)
        units = [unit_name(n) for n in names]
        results = m.run_jobs("StopUnit", units, timeout)
        bad = [f"{instance_of(u)} (job {r})" for u, r in results.items() if r != "done"]
        if bad:
            raise JobFailed(f"could not stop {', '.join(bad)}: nothing removed")
        m.disable(units)
        for n in names:
            cfg = cfgmod.config_path(n, ctx.config_dir)
            if _unlink(cfg):
                out[n].append(str(cfg))
            if purge:
                out[n] += _purge(ctx, n)
        m.reload()
        for u in units:
            with contextlib.suppress(GridbotError):  # not failed, or already unloaded: nothing to reset
                m.reset_failed(u)
    return out


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False
    except PermissionError:
        raise PermissionDenied(f"cannot remove {path}: permission denied (needs root: sudo)") from None


def _purge(ctx: Context, name: str) -> list[str]:
    removed = []
    for state in (ctx.state_root / name, ctx.state_dir(name)):
        if state.is_dir() and not state.is_symlink():
            shutil.rmtree(state)
            removed.append(str(state))
    link = ctx.state_root / name  # systemd's symlink to the dynamic user's state, now dangling
    if link.is_symlink():
        link.unlink()
        removed.append(str(link))
    if not ctx.user:
        from . import credentials

        paths = [p for p in credentials.key_paths(name) if p.exists()]
        if credentials.remove_keys(name):
            removed += [str(p) for p in paths]
    dropins = ctx.dropin_dir(name)
    if dropins.is_dir():
        shutil.rmtree(dropins)
        removed.append(str(dropins))
    return removed


# -- reading ------------------------------------------------------------------------------------
def all_names(ctx: Context, m: Manager, enabled: set[str]) -> list[str]:
    """Configs, loaded units and enabled instances: systemd alone cannot list them all."""
    return sorted(set(cfgmod.list_names(ctx.config_dir)) | set(m.loaded_instances()) | enabled)


def rows(ctx: Context) -> list[UnitRow]:
    enabled = enabled_instances(ctx.user)
    with ctx.manager() as m:
        return m.rows(all_names(ctx, m, enabled), enabled)


def figures_dir(ctx: Context) -> Path:
    return paths.figures_dir(ctx.user)


def figures(ctx: Context, names: list[str]) -> dict[str, dict]:
    """The figures each named bot published (absent: never ran since boot, or not publishing)."""
    from .figures import read_all

    return read_all(figures_dir(ctx), names)


def status(ctx: Context, name: str) -> UnitRow:
    check_name(name)
    enabled = enabled_instances(ctx.user)
    with ctx.manager() as m:
        known(ctx, m, [name])
        return m.status(name, enabled)


def enable(ctx: Context, names: list[str], on: bool) -> None:
    with ctx.manager() as m:
        ensure_template(m)
        units = [unit_name(n) for n in names]
        m.enable(units) if on else m.disable(units)


def cleanup(ctx: Context, names: list[str]) -> None:
    with ctx.manager() as m:
        for n in names:
            m.reset_failed(unit_name(n))


# -- reset --------------------------------------------------------------------------------------
RUNNING_STATES = ("active", "activating", "reloading", "deactivating")


@dataclass(frozen=True)
class ResetPlan:
    """What ``gridbot reset NAME`` will do; built with every check done and nothing changed."""

    name: str
    state_dir: Path
    state_entries: list[str]
    live: bool
    exchange: str = ""
    account: str = ""
    symbol: str = ""
    epochs: tuple[int, ...] = ()
    accounts_root: Optional[Path] = None
    failed: bool = False


def _unit_state(ctx: Context, name: str) -> str:
    with ctx.manager() as m:
        known(ctx, m, [name])
        rows = m.rows([name], set())
    return rows[0].active_state if rows else "inactive"


def _check_not_holding(root: Path, exchange: str, label: str, symbol: str, name: str) -> None:
    h = acct.holder(root, exchange, label, symbol)
    if h is not None and h.get("name") == name:  # running outside systemd (`gridbot run` by hand)
        raise UsageError(f"{name} is running (pid {h.get('pid', '?')}): stop it first; nothing was reset")


def reset_plan(ctx: Context, name: str) -> ResetPlan:
    """Check that ``name`` may be reset (root for the system, known, configured, not running)."""
    check_name(name)
    if not ctx.user and os.geteuid() != 0:
        raise PermissionDenied(f"gridbot reset deletes the state of {name}: run it with sudo")
    state = _unit_state(ctx, name)
    if state in RUNNING_STATES:
        raise UsageError(f"{name} is {state}: stop it first (`gridbot stop {name}`); nothing was reset")
    cfg = cfgmod.load(name, ctx.config_dir)
    state_dir = ctx.state_dir(name)
    try:
        entries = sorted(p.name for p in state_dir.iterdir()) if state_dir.is_dir() else []
    except PermissionError:
        raise PermissionDenied(f"cannot read {state_dir}: permission denied (use sudo)") from None
    if cfg.exchange == "paper":
        return ResetPlan(name, state_dir, entries, live=False, failed=state == "failed")
    exchange, label = acct.account_key(cfg)
    root = acct.accounts_root(ctx.state_root)
    _check_not_holding(root, exchange, label, cfg.symbol, name)
    epochs = tuple(acct.history(root, exchange, label, name)["epochs"])
    return ResetPlan(name, state_dir, entries, True, exchange, label, cfg.symbol, epochs, root, state == "failed")


def reset_apply(ctx: Context, plan: ResetPlan) -> list[str]:
    """Clear the state directory, retire the live instance's epochs (its next start cancels their
    open orders), clear a failed unit. Returns what was done, one line each."""
    name = plan.name
    if _unit_state(ctx, name) in RUNNING_STATES:  # started since the plan was made
        raise UsageError(f"{name} was started meanwhile: stop it first; nothing was reset")
    if plan.live:
        assert plan.accounts_root is not None
        _check_not_holding(plan.accounts_root, plan.exchange, plan.account, plan.symbol, name)
    done = []
    removed = 0
    for entry in plan.state_dir.iterdir() if plan.state_dir.is_dir() else ():
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
        except FileNotFoundError:
            pass
        except PermissionError:
            raise PermissionDenied(f"cannot remove {entry}: permission denied (use sudo)") from None
    done.append(f"state cleared: removed {removed} entr{'y' if removed == 1 else 'ies'} from {plan.state_dir}"
                if removed else f"state: {plan.state_dir} was already empty")
    if plan.live:
        assert plan.accounts_root is not None
        retired = acct.mark_reset(plan.accounts_root, plan.exchange, plan.account, name, plan.symbol)
        where = acct.describe(plan.exchange, plan.account)
        if retired:
            done.append(f"client-id epochs {', '.join(map(str, retired))} retired on {where}; the next start "
                        f"cancels its open orders on {plan.symbol} carrying them, then places a fresh grid")
        else:
            done.append(f"no client-id epochs recorded for it on {where}: no old order of it to cancel")
    if plan.failed:
        with ctx.manager() as m:
            m.reset_failed(unit_name(name))
        done.append(f"{unit_name(name)} is no longer marked failed")
    done.append(f"start it with `gridbot {'--user ' if ctx.user else ''}start {name}`")
    return done


# -- logs ---------------------------------------------------------------------------------------
JOURNAL_GROUPS = ("systemd-journal", "adm", "wheel")  # journalctl shows the system journal to these


def check_journal_access(ctx: Context) -> None:
    """Unprivileged journalctl silently shows only the caller's own lines ('-- No entries --'): say
    which right is missing instead."""
    if ctx.user or os.geteuid() == 0:
        return
    from .systemd import _in_group

    states = [_in_group(g) for g in JOURNAL_GROUPS]
    if any(active for _listed, active in states):
        return
    if any(listed for listed, _active in states):
        raise PermissionDenied("reading gridbot's logs: your systemd-journal membership is not active yet; "
                               "log out and in again (or `newgrp systemd-journal`), or use sudo")
    raise PermissionDenied("reading gridbot's logs needs root (sudo) or membership of the systemd-journal group")


def journal_command(ctx: Context, names: list[str], *, follow: bool = False, lines: Optional[int] = None,
                    since: Optional[str] = None, priority: Optional[str] = None, grep: Optional[str] = None,
                    output: str = "short-iso") -> list[str]:
    """journalctl over the given instances (or all): exact ``-u`` semantics, no native deps."""
    exe = shutil.which("journalctl")
    if not exe:
        raise GridbotError("journalctl not found: gridbot logs needs systemd's journal")
    cmd = [exe, "--no-pager", "-o", output]
    if ctx.user:
        cmd.append("--user")
    units = [unit_name(n) for n in names] or [PATTERN]
    for u in units:
        cmd += ["-u", u]
    if follow:
        cmd.append("-f")
    if lines is not None:
        cmd += ["-n", str(lines)]
    if since:
        cmd += ["--since", since]
    if priority:
        cmd += ["-p", priority]
    if grep:
        cmd += ["--grep", grep]
    return cmd


def recent_log(ctx: Context, name: str, lines: int = 5) -> list[str]:
    try:
        cmd = journal_command(ctx, [name], lines=lines, output="short-iso")
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (GridbotError, OSError, subprocess.TimeoutExpired):
        return []
    return [ln for ln in out.stdout.splitlines() if ln and not ln.startswith("-- ")]
