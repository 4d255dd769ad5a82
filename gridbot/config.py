"""Reading, validating and installing instance configs. The only place that sees ValidationError."""
from __future__ import annotations

import os
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


def load_file(path: Path) -> "GridConfig":
    try:
        with open(path, "rb") as f:
            text = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied (try sudo)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_config(text, str(path))


def load(name: str, directory: Path) -> "GridConfig":
    return load_file(config_path(name, directory))


def schema() -> dict:
    from .models import GridConfig

    return GridConfig.model_json_schema(by_alias=True)

