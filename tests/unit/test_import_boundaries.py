"""The pure core (strategy, grid maths, store, records) imports nothing from the venues, the CLI or
systemd, and the package's import graph has no cycle."""
import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "gridbot"
CORE = ("gridbot.strategy", "gridbot.grid", "gridbot.store", "gridbot.records")
FORBIDDEN = ("gridbot.exchange", "gridbot.cli", "gridbot.systemd", "gridbot.fleet", "gridbot.credentials",
             "gridbot.runner", "pystemd", "httpx", "typer")


def test_core_modules_load_nothing_from_venues_cli_or_systemd():
    code = (f"import json, sys\nfor m in {list(CORE)!r}: __import__(m)\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    bad = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert bad == []


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """gridbot modules a file imports, anywhere in it (lazy imports count too; ``if TYPE_CHECKING:``
    imports do not), resolved to modules."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for top in ast.walk(tree) if isinstance(top, ast.If) and "TYPE_CHECKING" in ast.unparse(top.test)
                   for stmt in top.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:  # annotations only: never imported at run time
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            mod = node.module or ""
            full = (f"{base}.{mod}" if mod else base) if node.level else mod
            out.add(full)
            out |= {f"{full}.{a.name}" for a in node.names}
    return {m for m in out if m.startswith("gridbot")}


def test_core_sources_import_nothing_from_venues_cli_or_systemd():
    files = [p for m in CORE for p in ([PKG / f"{m.split('.')[1]}.py"] if (PKG / f"{m.split('.')[1]}.py").exists()
                                     else sorted((PKG / m.split(".")[1]).rglob("*.py")))]
    assert files
    for f in files:
        bad = [m for m in _imports(f) if any(m == x or m.startswith(x + ".") for x in FORBIDDEN)]
        assert bad == [], f"{f.relative_to(ROOT)} imports {bad}"


# a cycle that predates this check, in the CLI being thinned in parallel (issue 11 item 8): `top`
# imports the commands' helpers lazily and the commands import `top`. Any other cycle fails.
KNOWN_CYCLES: set[frozenset[str]] = set()  # none left; a new cycle fails here


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(frozenset(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_cycle():
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph = {m: {i for i in _imports(p) if i in files and i != m} for m, p in files.items()}
    # a package's __init__ re-exporting its own submodules is not a cycle through the package
    for m in graph:
        graph[m] = {i for i in graph[m] if not (m.startswith(i + ".") and files[i].name == "__init__.py")}
    new = [sorted(c) for c in _cycles(graph) if c not in KNOWN_CYCLES]
    assert new == [], f"import cycles: {new}"
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]  # the check itself
