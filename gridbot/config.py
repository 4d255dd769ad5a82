"""Reading, validating and installing instance configs. The only place that sees ValidationError."""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from ._units import check_name
from .errors import ConfigError, PermissionDenied
from .paths import SYSTEM_CONFIG_DIR, config_dir  # noqa: F401  (re-exported; the rule lives in paths)

if TYPE_CHECKING:  # pydantic costs ~150 ms to import: only commands that validate pay for it
    from pydantic import ValidationError

    from .models import GridConfig

MAX_CONFIG_BYTES = 1 << 20  # a grid config is a few hundred bytes; refuse to parse megabytes


def config_path(name: str, directory: Path) -> Path:
    return directory / f"{check_name(name)}.json"


def list_names(directory: Path) -> list[str]:
    """Instance names that have a config file (invalid stems are ignored, not crashed on)."""
    try:
        entries = sorted(directory.glob("*.json"))
    except OSError:
        return []
    names = []
    for p in entries:
        try:
            names.append(check_name(p.stem))
        except Exception:
            continue
    return names


def parse_config(text: str | bytes, source: str, *, feasible: bool = False) -> "GridConfig":
    """Validate JSON text; raise ConfigError naming the file, every bad field and why, at once.

    pydantic stops at field errors before it runs the cross-field checks, and the grid's
    feasibility needs a valid model: fixing two errors would reveal the next ones. So after a
    failure the bad keys are set aside and the rest is checked again (up to three rounds); what
    that finds about the keys still in place is reported too. ``feasible``: also the start-up
    feasibility checks (``gridbot.feasibility``) for paper configs, whose venue the config describes.
    """
    from pydantic import ValidationError

    from .models import GridConfig

    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source}: file is larger than {MAX_CONFIG_BYTES} bytes; not a gridbot config")
    try:
        cfg = GridConfig.model_validate_json(text)
    except ValidationError as exc:
        parts = describe(exc)
        parts += _more_errors(text, exc, feasible)
        raise ConfigError(f"{source}: {'; '.join(dict.fromkeys(parts))}") from None
    if feasible:
        found = _feasibility(cfg)
        if found:
            raise ConfigError(f"{source}: {'; '.join(found)}")
    return cfg


def _feasibility(cfg: "GridConfig") -> list[str]:
    if cfg.exchange != "paper":  # a live venue's rules and balances are only known at start
        return []
    from . import feasibility

    return feasibility.problems(cfg, feasibility.paper_venue(cfg))


def _more_errors(text: str | bytes, first: "ValidationError", feasible: bool) -> list[str]:
    """Set the failing keys aside and validate the rest again, so every error shows in one go."""
    import json
    from decimal import Decimal

    from pydantic import ValidationError

    from .models import GridConfig

    try:
        data = json.loads(text, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        return []
    if not isinstance(data, dict):
        return []
    dropped: set[str] = set()
    out: list[str] = []
    exc: ValidationError = first
    for _round in range(3):
        progress = False
        for err in exc.errors(include_url=False, include_input=False):
            loc = [str(x) for x in err.get("loc", ())]
            if loc and _drop(data, loc):
                dropped.add(".".join(loc))
                progress = True
        if not progress:
            return out
        try:
            cfg = GridConfig.model_validate(data)
        except ValidationError as again:
            out += [m for m in describe(again) if not _mentions(m, dropped)]
            exc = again
            continue
        if feasible:
            out += [m for m in _feasibility(cfg) if not _mentions(m, dropped)]
        return out
    return out


def _drop(data: dict, loc: list[str]) -> bool:
    node = data
    for k in loc[:-1]:
        node = node.get(k) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return False
    if isinstance(node, dict) and loc[-1] in node:
        del node[loc[-1]]
        return True
    return False


def _mentions(message: str, keys: set[str]) -> bool:
    """Is this message about a key that was set aside (its default would be judged, not the file)?"""
    return any(k in message or k.rsplit(".", 1)[-1] in message for k in keys) or (
        any(k.split(".")[-1] in ("qty_per_level", "investment") for k in keys) and "exactly one of" in message)


# Patterns, said in words (pydantic would print the raw regular expression).
PATTERN_WORDS = {
    "symbol": "must be BASE_QUOTE: two parts of capital letters or digits (1-20 each) joined by '_', e.g. SOL_USDC",
    "backpack.base_url": "must be an http:// or https:// URL without spaces",
    "backpack.account": "must be 1-64 letters, digits, '_', '.' or '-'",
}


def describe(exc: "ValidationError") -> list[str]:
    """One message per error: 'field: why' (pydantic's own text is multi-line and echoes input)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        path = tuple(str(x) for x in err.get("loc", ()))
        loc = ".".join(path) or "config"
        msg = err.get("msg", "invalid")
        kind = err.get("type")
        if kind == "json_invalid":
            ctx = err.get("ctx", {}).get("error", "")
            parts.append(f"malformed JSON ({ctx})" if ctx else "malformed JSON")
            continue
        if kind == "extra_forbidden":
            msg = "unknown key" + (f"; {hint}" if (hint := suggest_key(path)) else " (typo?)")
        elif kind == "string_pattern_mismatch":
            msg = PATTERN_WORDS.get(loc, "does not have the expected form")
        msg = msg.removeprefix("Value error, ")
        parts.append(msg if loc == "config" else f"{loc}: {msg}")
    return parts


def _key_paths() -> dict[tuple[str, ...], set[str]]:
    """Every valid key path of a config -> its sibling keys, from the models themselves."""
    from pydantic import BaseModel

    from .models import GridConfig

    out: dict[tuple[str, ...], set[str]] = {}

    def walk(model: type, prefix: tuple[str, ...]) -> None:
        names = set()
        for name, f in model.model_fields.items():
            key = f.alias or name
            names.add(key)
            ann = f.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, prefix + (key,))
        out[prefix] = names

    walk(GridConfig, ())
    return out


def suggest_key(path: tuple[str, ...]) -> str:
    """'did you mean …' for an unknown key: a near sibling (typo), or the same key at another level."""
    import difflib

    if not path:
        return ""
    parent, key = path[:-1], path[-1]
    paths = _key_paths()
    elsewhere = [".".join(p + (key,)) for p, names in sorted(paths.items()) if key in names and p != parent]
    if elsewhere:
        home = elsewhere[0].rsplit(".", 1)[0] if "." in elsewhere[0] else ""
        return f"did you mean {' or '.join(elsewhere)}? (it belongs {'under ' + home if home else 'at the top level'})"
    near = difflib.get_close_matches(key, sorted(paths.get(parent, ())), n=1, cutoff=0.6)
    if near:
        return f"did you mean {'.'.join(parent + (near[0],))}?"
    everywhere = {".".join(p + (n,)): n for p, names in paths.items() for n in names}
    near = difflib.get_close_matches(key, sorted(set(everywhere.values())), n=1, cutoff=0.75)
    if near:
        full = sorted(k for k, v in everywhere.items() if v == near[0])
        return f"did you mean {' or '.join(full)}?"
    return ""


def read_regular(path: Path, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of ``path``, read once: the final component is never followed if it is a symlink,
    anything but a regular file (FIFO, device, directory) is refused without blocking, and a file
    over ``limit`` is refused. Callers parse and install exactly these bytes, never a second read."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except PermissionError:
        raise PermissionDenied(f"cannot read {path}: permission denied (needs root: sudo)") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"{path}: is a symlink; give the file itself") from None
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"{path}: is a directory, not a config file")
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{path}: not a regular file (FIFO, socket or device); refusing to read it")
        if st.st_size > limit:
            raise ConfigError(f"{path}: file is larger than {limit} bytes; not a gridbot config")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, limit + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise ConfigError(f"{path}: file is larger than {limit} bytes; not a gridbot config")
    return data


def read_and_parse(path: Path, *, feasible: bool = False) -> "tuple[bytes, GridConfig]":
    """One read of ``path`` and the config those very bytes hold (``feasible``: see parse_config)."""
    data = read_regular(path)
    return data, parse_config(data, str(path), feasible=feasible)


def load_file(path: Path, *, feasible: bool = False) -> "GridConfig":
    return read_and_parse(path, feasible=feasible)[1]


SERVICE_GROUP = "gridbot"  # every instance's group (DynamicUser= gives each its own uid)


def service_readable(path: Path) -> None:
    """Raise ConfigError unless a bot (its own dynamic uid, group ``gridbot``) can read
    ``path``: the file world- or gridbot-group-readable, every directory above it searchable."""
    try:
        import grp

        gid: int | None = grp.getgrnam(SERVICE_GROUP).gr_gid
    except (KeyError, ImportError):
        gid = None

    def allowed(st: os.stat_result, other: int, group: int) -> bool:
        return bool(st.st_mode & other) or (gid is not None and st.st_gid == gid and bool(st.st_mode & group))

    try:
        st = os.stat(path)
        if not allowed(st, stat.S_IROTH, stat.S_IRGRP):
            raise ConfigError(f"{path}: the bot cannot read it (mode {stat.S_IMODE(st.st_mode):04o}; it runs as its "
                              f"own user): `chmod 0644 {path}`")
        for d in Path(os.path.abspath(path)).parents:
            st = os.stat(d)
            if not allowed(st, stat.S_IXOTH, stat.S_IXGRP):
                raise ConfigError(f"{path}: the bot cannot reach it: directory {d} has mode "
                                  f"{stat.S_IMODE(st.st_mode):04o} (`chmod o+x {d}`)")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot check ({exc.strerror})") from None


def load(name: str, directory: Path, *, feasible: bool = False) -> "GridConfig":
    return load_file(config_path(name, directory), feasible=feasible)


def schema() -> dict:
    from .models import GridConfig

    return GridConfig.model_json_schema(by_alias=True)

