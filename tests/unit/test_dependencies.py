"""setup.cfg's install_requires names exactly the distributions that the project's packages import."""

from __future__ import annotations

import ast
import configparser
import re
import sys
from functools import cache
from importlib.metadata import distribution, packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"shim", "provider", "contract", "cloudbackup"}
# Declared though no module names them in an import: SQLAlchemy loads the driver of a URL by itself.
LOADED_BY_URL = {"psycopg": "postgresql+psycopg:// database URLs (--database)"}


def imported_modules() -> set[str]:
    """Every absolute import of the packages' code, nested ones included (most heavy imports are lazy)."""
    names: set[str] = set()
    for package in sorted(FIRST_PARTY):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module)
    return {
        name
        for name in names
        if name.split(".")[0] not in FIRST_PARTY and name.split(".")[0] not in sys.stdlib_module_names
    }


@cache
def _files(dist: str) -> frozenset[str]:
    return frozenset(str(f) for f in distribution(dist).files or ())


def distribution_of(module: str) -> str:
    """The distribution a module comes from; for a namespace package (azure) the one holding its files."""
    candidates = packages_distributions()[module.split(".")[0]]
    if len(candidates) > 1:
        prefix = module.replace(".", "/")
        candidates = [
            d for d in candidates if any(f.startswith((prefix + "/", prefix + ".py")) for f in _files(d))
        ]
    assert len(candidates) == 1, (module, candidates)
    return normalize(candidates[0])


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = config["options"]["install_requires"].strip().splitlines()
    requirements = [line.strip() for line in lines if line.strip()]
    return {normalize(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0]) for line in requirements}


def test_install_requires_is_exactly_what_the_code_imports() -> None:
    imported = {distribution_of(module) for module in imported_modules()}
    assert imported - declared() == set(), "imported but not in setup.cfg install_requires"
    assert declared() - imported - set(LOADED_BY_URL) == set(), (
        "in setup.cfg install_requires but imported by no module"
    )
