"""Import direction: shim/ and provider/ import contract/, never each other; cloudbackup/ joins them."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("contract", "shim", "provider", "cloudbackup")
# What each package may not import: the two deployables stay apart, and the contract stands alone.
FORBIDDEN = {
    "contract": {"shim", "provider", "cloudbackup"},
    "shim": {"provider", "cloudbackup"},
    "provider": {"shim", "cloudbackup"},
    "cloudbackup": set(),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function, relative imports resolved, and the
    constant names given to importlib.import_module (how the CLI loads its commands)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            found.add(source)
            # `from provider import schema` imports the module provider.schema (a name that is no module
            # is dropped by the walks, which know every module).
            found.update(f"{source}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


def import_edges() -> dict[str, set[str]]:
    """Module -> the first-party modules it imports, for every module of the four packages."""
    edges: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            edges[module_name(path)] = {m for m in imports_of(path) if m.split(".")[0] in PACKAGES}
    return edges


def test_the_walk_sees_imports_made_inside_functions() -> None:
    edges = import_edges()
    # cloudbackup/cli.py imports the provider's installer lazily, inside the command that needs it.
    assert "provider.runtime.install" in edges["cloudbackup.cli"]


def test_no_package_imports_a_package_it_must_not() -> None:
    crossings = sorted(
        f"{module} imports {imported}"
        for module, imported_modules in import_edges().items()
        for imported in imported_modules
        if imported.split(".")[0] in FORBIDDEN[module.split(".")[0]]
    )
    assert crossings == []


def test_the_shim_and_the_provider_both_read_the_contract() -> None:
    edges = import_edges()
    for package in ("shim", "provider"):
        assert any(
            imported.startswith("contract")
            for module, found in edges.items()
            if module.startswith(package)
            for imported in found
        ), package


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import circles among the modules; imports inside functions and for type checking count too."""
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            found.append([*path[path.index(module) :], module])
            return
        if module in done or module not in edges:
            return
        for imported in sorted(edges[module]):
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(edges):
        visit(module, [])
    return found


def test_the_provider_has_no_import_circles() -> None:
    edges = import_edges()
    provider = {m: {i for i in found if i.startswith("provider")} for m, found in edges.items()}
    assert [c for c in cycles(provider) if c[0].startswith("provider")] == []


MAX_LINES = 400


def long_modules_without_a_reason() -> list[str]:
    """Modules of the four packages over MAX_LINES lines whose docstring does not say why ("long because")."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text()
            lines = len(text.splitlines())
            docstring = ast.get_docstring(ast.parse(text, str(path))) or ""
            if lines > MAX_LINES and "long because" not in docstring.lower():
                found.append(f"{path.relative_to(ROOT)}: {lines} lines")
    return found


def test_no_module_is_over_400_lines_unless_its_docstring_says_why_it_is_long() -> None:
    assert long_modules_without_a_reason() == []
