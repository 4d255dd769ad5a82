"""Reading, validating and installing instance configs. The only place that sees ValidationError."""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from ._units import check_name
from .errors import ConfigError

if TYPE_CHECKING:  # pydantic costs ~150 ms to import: only commands that validate pay for it
    from pydantic import ValidationError

    from .models import GridConfig

SYSTEM_CONFIG_DIR = Path("/etc/gridbot")
MAX_CONFIG_BYTES = 1 << 20  # a grid config is a few hundred bytes; refuse to parse megabytes


def config_dir(user: bool = False) -> Path:
    """Where configs live: $GRIDBOT_CONFIG_DIR, systemd's $CONFIGURATION_DIRECTORY, or the default."""
    env = os.environ.get("GRIDBOT_CONFIG_DIR") or os.environ.get("CONFIGURATION_DIRECTORY")
    if env:
        return Path(env.split(":")[0])
    if user:
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return Path(base) / "gridbot"
    return SYSTEM_CONFIG_DIR


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


def parse_config(text: str | bytes, source: str) -> "GridConfig":
    """Validate JSON text; raise ConfigError naming the file, the field and why."""
    from pydantic import ValidationError

    from .models import GridConfig

    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source}: file is larger than {MAX_CONFIG_BYTES} bytes; not a gridbot config")
    try:
        return GridConfig.model_validate_json(text)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe(exc)}") from None


def describe(exc: "ValidationError") -> str:
    """One line: 'field: why; field: why' (pydantic's own text is multi-line and echoes input)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(x) for x in err.get("loc", ())) or "config"
        msg = err.get("msg", "invalid")
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx", {}).get("error", "")
            parts.append(f"malformed JSON ({ctx})" if ctx else "malformed JSON")
            continue
        if err.get("type") == "extra_forbidden":
            msg = "unknown key (typo?)"
        msg = msg.removeprefix("Value error, ")
        parts.append(msg if loc == "config" else f"{loc}: {msg}")
    return "; ".join(parts)


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
        raise ConfigError(f"{path}: permission denied (try sudo)") from None
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


def read_and_parse(path: Path) -> "tuple[bytes, GridConfig]":
    """One read of ``path`` and the config those very bytes hold."""
    data = read_regular(path)
    return data, parse_config(data, str(path))


def load_file(path: Path) -> "GridConfig":
    return read_and_parse(path)[1]


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


def load(name: str, directory: Path) -> "GridConfig":
    return load_file(config_path(name, directory))


def schema() -> dict:
    from .models import GridConfig

    return GridConfig.model_json_schema(by_alias=True)

