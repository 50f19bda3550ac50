"""The package layout of docs/design.md ("Package layout"): every package folder is mapped and listed in pyproject.

The mapping is read from pyproject (package-dir) and checked against the folders, so a new top-level folder
(a new stage's) needs its two pyproject lines and nothing here.
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


# folder -> package, as pyproject maps them: core is camelid itself, every other folder camelid.<folder>
TOP = {folder: pkg for pkg, folder in _pyproject()["tool"]["setuptools"]["package-dir"].items()}


def test_top_level_folders_are_mapped():
    package_folders = {d.name for d in REPO.iterdir() if d.is_dir() and (d / "__init__.py").is_file()}
    assert set(TOP) == package_folders, \
        f"unmapped package folders: {package_folders - set(TOP)}; mapped but not package folders: " \
        f"{set(TOP) - package_folders}"
    assert TOP["core"] == "camelid"
    assert all(pkg == f"camelid.{folder}" for folder, pkg in TOP.items() if folder != "core"), TOP


def test_every_package_folder_is_listed_and_has_init():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = set()
    for folder, pkg in TOP.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join([pkg, *rel.parts]) if rel.parts else pkg)
        # a folder with .py files but no __init__.py would silently not ship
        for py in (REPO / folder).rglob("*.py"):
            d = py.parent
            if "__pycache__" in d.parts or "static" in d.parts:
                continue
            assert (d / "__init__.py").is_file(), f"{d} has Python files but no __init__.py"
    # data-only packages (no Python: built-in data files, the annotation page) are listed so setuptools ships
    # them without its "package would be ignored" warning
    data_only = {pkg for pkg in listed - found if _data_folder(pkg) is not None}
    assert found == listed - data_only, \
        f"missing from pyproject packages: {found - listed}; listed but absent: {listed - found - data_only}"


def _data_folder(pkg: str) -> Path | None:
    """The folder of a listed package that holds files but no Python, if ``pkg`` is one."""
    for folder, top in TOP.items():
        if pkg.startswith(top + "."):
            d = REPO / folder / Path(*pkg[len(top) + 1:].split("."))
            if d.is_dir() and any(d.iterdir()) and not any(d.glob("*.py")):
                return d
    return None


def test_no_tests_init():
    assert not (REPO / "tests" / "__init__.py").exists()


def test_console_script():
    assert _pyproject()["project"]["scripts"]["camelid"] == "camelid.cli:main"
