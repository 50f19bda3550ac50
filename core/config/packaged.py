"""The pipelines.yaml and launch configs that ship with camelid, and `camelid init-config` to copy them.

One copy lives in the repository (./pipelines.yaml, ./configs/); the wheel installs the same files under
``<prefix>/share/camelid/`` (pyproject's ``data-files``). Outside a clone, a command given the default
``pipelines.yaml`` that finds none in the current folder reads the packaged one, with relative paths
(registries, runs, data files) taken from the current folder, as if the file were there.
"""

from __future__ import annotations

import argparse
import shutil
import site
import sys
import sysconfig
from pathlib import Path

from camelid.errors import CamelidError
from camelid.log import get_logger

log = get_logger("config")

CONFIG_NAME = "pipelines.yaml"
LAUNCH_DIR = "configs"
_announced = False


def _candidates() -> list[Path]:
    """Folders that may hold the shipped files: the source tree (a clone, an editable install), then the
    data folders a wheel installs into (the environment's, then the user's)."""
    source = Path(__file__).resolve().parents[2]  # core/config/../.. in a clone
    out = [source] if (source / "pyproject.toml").is_file() and (source / "core").is_dir() else []
    bases = [sysconfig.get_path("data"), sys.prefix, getattr(site, "USER_BASE", None)]
    out += [Path(b) / "share" / "camelid" for b in bases if b]
    return list(dict.fromkeys(out))


def packaged_dir() -> Path:
    """The folder holding the shipped pipelines.yaml (and configs/)."""
    for d in _candidates():
        if (d / CONFIG_NAME).is_file():
            return d
    raise CamelidError("this camelid installation has no packaged pipelines.yaml (looked in "
                       + ", ".join(str(d) for d in _candidates()) + "); reinstall camelid, or pass --config FILE")


def find_config(path: str | Path) -> tuple[Path, bool]:
    """(the file to read, whether it is the packaged one): the default name falls back to the packaged file
    when the current folder has none; any other path is read as given."""
    path = Path(path)
    if str(path) != CONFIG_NAME or path.exists():
        return path, False
    shipped = packaged_dir() / CONFIG_NAME
    global _announced
    if not _announced:
        _announced = True
        log.info("no ./%s here: using the one packaged with camelid (%s); `camelid init-config` writes an "
                 "editable copy into this folder", CONFIG_NAME, shipped)
    return shipped, True


def copy_defaults(dest: Path, *, launch_configs: bool = True) -> tuple[list[Path], list[Path]]:
    """Copy pipelines.yaml (and configs/*.yaml) into ``dest``; returns (written, skipped because they exist)."""
    src = packaged_dir()
    pairs = [(src / CONFIG_NAME, dest / CONFIG_NAME)]
    if launch_configs and (src / LAUNCH_DIR).is_dir():
        pairs += [(f, dest / LAUNCH_DIR / f.name) for f in sorted((src / LAUNCH_DIR).glob("*.yaml"))]
    written, skipped = [], []
    for s, d in pairs:
        if d.exists() or d.is_symlink():
            skipped.append(d)
            continue
        d.parent.mkdir(parents=True, exist_ok=True)
        with open(d, "xb") as out, open(s, "rb") as inp:  # "x": never over a file that appeared meanwhile
            shutil.copyfileobj(inp, out)
        written.append(d)
    return written, skipped


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="camelid init-config",
        description="Write editable copies of camelid's shipped pipelines.yaml and launch configs (configs/*.yaml, "
        "for `accelerate launch --config_file`) into a folder; an existing file is never overwritten.")
    p.add_argument("dir", nargs="?", default=".", help="where to write them (default: the current folder)")
    p.add_argument("--no-launch-configs", action="store_true", help="only pipelines.yaml")
    args = p.parse_args(argv)
    dest = Path(args.dir)
    written, skipped = copy_defaults(dest, launch_configs=not args.no_launch_configs)
    for f in written:
        print(f"wrote {f}")
    for f in skipped:
        print(f"kept {f} (exists; not overwritten)")
    if not written:
        raise CamelidError(f"nothing written: every file already exists in {dest} (delete one to get the "
                           "shipped version again)")
    return 0
