"""The bot process's package (``gridbot/bot/``) stays small modules with imports running one way (that
the whole package has no import cycle: tests/unit/test_import_boundaries.py)."""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "gridbot"


def _module(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(name: str) -> bool:
    rel = Path(*name.split("."))
    return (PKG.parent / rel).with_suffix(".py").exists() or (PKG.parent / rel / "__init__.py").exists()


def _top_level_imports(path: Path) -> set[str]:
    """Modules imported when ``path`` loads: top-level statements, not under ``if TYPE_CHECKING``,
    not inside functions (the lazy imports that keep the paper bot lean)."""
    me = _module(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            mod = (f"{base}.{node.module}" if node.module else base) if node.level else node.module or ""
            for a in node.names:
                out.add(f"{mod}.{a.name}" if _exists(f"{mod}.{a.name}") else mod)
    return out


def _graph() -> dict[str, set[str]]:
    mods = {_module(p): p for p in PKG.rglob("*.py")}
    return {m: {i for i in _top_level_imports(p) if i in mods and i != m} for m, p in mods.items()}


def test_the_parts_import_each_other_one_way_only():
    """main -> core -> the parts -> base; no part imports core, main or the package's __init__, and
    base (the shared state) imports no part."""
    graph = _graph()
    for m, deps in graph.items():
        if m.startswith("gridbot.bot.") and m not in ("gridbot.bot.main", "gridbot.bot.core"):
            assert not deps & {"gridbot.bot", "gridbot.bot.main", "gridbot.bot.core"}, (m, deps)
    assert not {d for d in graph["gridbot.bot.base"] if d.startswith("gridbot.bot")}


def test_modules_are_small_and_load_without_asyncio():
    for p in sorted((PKG / "bot").glob("*.py")):
        assert len(p.read_text().splitlines()) <= 350, p.name
        assert not {"asyncio", "ssl", "hashlib"} & _top_level_imports(p), p.name
        assert ast.get_docstring(ast.parse(p.read_text())), f"{p.name}: say its one job in a docstring"
