"""Where a user's artifacts are when the registry a command opened is empty: the other profiles' registries.

`camelid run --profile micro` publishes into ./registry-micro; a later `camelid registry ls` (default profile)
opens ./registry. The message names the folder it read and the profiles whose registries do hold artifacts.
"""

from __future__ import annotations

import os
from pathlib import Path

from camelid.errors import CamelidError


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is under it (./registry-micro), else absolute."""
    try:
        return "./" + str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _artifact_count(root: Path) -> int:
    from camelid.registry import Registry

    try:
        reg = Registry(root)
        return sum(len(reg.versions(name)) for name in reg.names())
    except (CamelidError, OSError):
        return 0


def other_registries(config: str | os.PathLike | None, current: Path) -> list[tuple[str, Path, int]]:
    """(profile, registry folder, artifacts) for each profile of ``config`` whose registry is not ``current``
    and holds artifacts; [] when the config cannot be read."""
    from camelid.config import read_yaml

    path = Path(config) if config else None
    if path is None or not path.is_file():
        return []
    try:
        raw = read_yaml(path)
    except CamelidError:
        return []
    default = raw.get("registry", "./registry")
    profiles = raw.get("profiles") if isinstance(raw.get("profiles"), dict) else {}
    seen, out = {Path(current).resolve()}, []
    for name, body in profiles.items():
        folder = body.get("registry", default) if isinstance(body, dict) else default
        if not isinstance(folder, str):
            continue
        p = Path(folder).expanduser()
        p = (p if p.is_absolute() else path.resolve().parent / p).resolve()
        if p in seen:
            continue
        seen.add(p)
        if n := _artifact_count(p):
            out.append((str(name), p, n))
    return out


def elsewhere(config, current: Path, command: str) -> str:
    """'; profile micro uses ./registry-micro (3 artifacts): camelid registry ls --profile micro' (or '')."""
    return "".join(f"; profile {name} uses {_shown(p)} ({n} artifact{'s' if n != 1 else ''}): "
                   f"{command} --profile {name}" for name, p, n in other_registries(config, current))


def empty_registry_message(current: Path, config, command: str = "camelid registry ls") -> str:
    """'registry ./registry is empty' plus where the other profiles' artifacts are."""
    return f"registry {_shown(current)} is empty" + elsewhere(config, current, command)
