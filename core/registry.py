"""The local artifact registry (DESIGN.md §3): versioned folders with a manifest, published atomically.

    registry/<name>/<version>/manifest.json + files (model/ is a save_pretrained folder)
    registry/<name>/aliases.json            {"latest": "v3", "best": "v2"}

Refs: ``name`` (= latest), ``name@v2``, ``name@best``; a local path (``./x``, ``/x``, ``~/x``); a Hub id
(``hf:gpt2`` or anything with a slash that is not a local path, e.g. ``meta-llama/Llama-2-7b-hf``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from camelid.errors import RegistryError

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
VERSION_RE = re.compile(r"^v([1-9][0-9]*)$")
KINDS = ("base", "sft", "reward", "ppo", "dataset", "report")
STAGING = ".staging"


def validate_name(name: str, what: str = "artifact name") -> str:
    """Names are folder names: lowercase, no slashes, no leading dot (so no path traversal)."""
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise RegistryError(f"invalid {what} {name!r}: use lowercase letters, digits, '.', '_' and '-', "
                            "starting with a letter or digit")
    return name


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(config: Any) -> str:
    """Stable hash of a resolved config (what `camelid run` compares to decide a stage is up to date)."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]


def _hash_tree(root: Path, *, contents: bool = True) -> str:
    """sha256 over relative paths and file bytes (or sizes when contents=False) under root."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.name == "manifest.json":
            continue
        h.update(str(p.relative_to(root)).encode() + b"\0")
        if contents:
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        else:
            h.update(str(p.stat().st_size).encode())
    return h.hexdigest()[:16]


def _fsync_tree(root: Path) -> None:
    for p in sorted(root.rglob("*"), reverse=True):
        with contextlib.suppress(OSError):
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("camelid", "torch", "transformers", "trl", "peft", "datasets", "accelerate", "tokenizers"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@dataclass
class Artifact:
    """A published registry artifact (or an external model: a local path or Hub id)."""

    name: str
    version: str | None
    path: Path | None
    manifest: dict = field(default_factory=dict)
    external: str | None = None  # "path" | "hub" for models made elsewhere

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}" if self.version else self.name

    @property
    def kind(self) -> str | None:
        return self.manifest.get("kind")

    @property
    def hash(self) -> str:
        return self.manifest.get("artifact_hash", "")

    @property
    def model_path(self) -> str:
        """What to hand to from_pretrained: the model/ folder, a local path, or the Hub id."""
        if self.external == "hub":
            return self.name
        if self.external == "path":
            return str(self.path)
        assert self.path is not None
        return str(self.path / "model")

    def input_record(self) -> dict:
        return {"ref": self.ref, "name": self.name, "version": self.version, "hash": self.hash,
                "external": self.external}


@dataclass
class Publication:
    """Handed out by `Registry.publish`: write files into ``dir``, fill ``metrics``; ``artifact`` after."""

    name: str
    kind: str
    dir: Path
    metrics: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    artifact: Artifact | None = None


_default_root: Path | None = None


def set_default_root(root: str | Path) -> None:
    """The registry that `registry:<ref>` data paths resolve in (set by the CLI from the config)."""
    global _default_root
    _default_root = Path(root).expanduser()


def default_registry() -> Registry:
    return Registry(_default_root or os.environ.get("CAMELID_REGISTRY", "./registry"))


class Registry:
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        self._pins: dict[str, str] = {}

    # ---- reading -------------------------------------------------------------------------------
    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and NAME_RE.match(p.name) and self.versions(p.name))

    def versions(self, name: str) -> list[str]:
        d = self.root / name
        if not d.is_dir():
            return []
        vs = [p.name for p in d.iterdir() if p.is_dir() and VERSION_RE.match(p.name)
              and (p / "manifest.json").is_file()]
        return sorted(vs, key=lambda v: int(v[1:]))

    def aliases(self, name: str) -> dict[str, str]:
        p = self.root / name / "aliases.json"
        if not p.is_file():
            return {}
        try:
            return json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise RegistryError(f"{p}: corrupt aliases file ({e})") from e

    def pin(self, name: str, version: str) -> None:
        """Make a bare ``name`` resolve to ``version`` (used by `camelid run` within one pipeline run)."""
        self._pins[name] = version

    def _describe(self) -> str:
        names = self.names()
        if not names:
            return f"the registry at {self.root} is empty (run `camelid init` or a stage first)"
        parts = []
        for n in names:
            al = self.aliases(n)
            extra = ", ".join(f"{k}={v}" for k, v in sorted(al.items()))
            parts.append(f"{n} ({', '.join(self.versions(n))}{'; ' + extra if extra else ''})")
        return f"the registry at {self.root} has: " + "; ".join(parts)

    def resolve(self, ref: str) -> Artifact:
        """Resolve a ref to an artifact; external models (path / Hub id) resolve without a manifest."""
        if not isinstance(ref, str) or not ref.strip():
            raise RegistryError(f"empty reference {ref!r}")
        ref = ref.strip()
        if ref.startswith("hf:"):
            return Artifact(name=ref[3:], version=None, path=None, external="hub",
                            manifest={"artifact_hash": "hub:" + ref[3:]})
        if ref.startswith(("/", "./", "../", "~")) or (("/" in ref or os.sep in ref) and Path(ref).exists()):
            p = Path(ref).expanduser()
            if not p.exists():
                raise RegistryError(f"local model path {ref!r} does not exist")
            if (p / "manifest.json").is_file():  # a registry version folder given by path
                return self._load(p)
            return Artifact(name=str(p), version=None, path=p, external="path",
                            manifest={"artifact_hash": "path:" + _hash_tree(p, contents=False)})
        if "/" in ref and "@" not in ref:
            return Artifact(name=ref, version=None, path=None, external="hub", manifest={"artifact_hash": "hub:" + ref})
        name, _, sel = ref.partition("@")
        validate_name(name, "registry reference")
        versions = self.versions(name)
        if not versions:
            raise RegistryError(f"unknown reference {ref!r}: {self._describe()}")
        if not sel:
            sel = self._pins.get(name) or self.aliases(name).get("latest") or versions[-1]
        elif not VERSION_RE.match(sel):
            validate_name(sel, "alias")
            alias = self.aliases(name)
            if sel not in alias:
                raise RegistryError(f"unknown alias {sel!r} for {name!r}: has versions {', '.join(versions)}"
                                    f"{' and aliases ' + ', '.join(sorted(alias)) if alias else ''}")
            sel = alias[sel]
        if sel not in versions:
            raise RegistryError(f"unknown version {name}@{sel}: {name} has {', '.join(versions)}")
        return self._load(self.root / name / sel)

    def _load(self, path: Path) -> Artifact:
        try:
            manifest = json.loads((path / "manifest.json").read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise RegistryError(f"{path / 'manifest.json'}: unreadable manifest ({e})") from e
        return Artifact(name=manifest["name"], version=manifest["version"], path=path, manifest=manifest)

    def find_matching(self, name: str, cfg_hash: str, inputs: dict[str, Artifact]) -> Artifact | None:
        """The newest version of ``name`` built from this config hash and these exact inputs, if any."""
        want = {role: a.hash for role, a in inputs.items()}
        for v in reversed(self.versions(name)):
            art = self._load(self.root / name / v)
            have = {role: rec.get("hash") for role, rec in art.manifest.get("inputs", {}).items()}
            if art.manifest.get("config_hash") == cfg_hash and have == want:
                return art
        return None

    def lineage(self, ref: str) -> list[tuple[int, str, Artifact]]:
        """Depth-first list of (depth, role, artifact) from ``ref`` back through its inputs."""
        out: list[tuple[int, str, Artifact]] = []

        def walk(art: Artifact, role: str, depth: int, seen: frozenset) -> None:
            out.append((depth, role, art))
            if art.external or art.ref in seen:
                return
            for r, rec in sorted(art.manifest.get("inputs", {}).items()):
                try:
                    child = self.resolve(rec["ref"]) if not rec.get("external") else Artifact(
                        name=rec["name"], version=None, path=None, external=rec["external"],
                        manifest={"artifact_hash": rec.get("hash", "")})
                except RegistryError:
                    child = Artifact(name=rec.get("ref", "?") + " (missing)", version=None, path=None,
                                     external="missing")
                walk(child, r, depth + 1, seen | {art.ref})

        walk(self.resolve(ref), "", 0, frozenset())
        return out

    # ---- writing -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def publish(self, name: str, kind: str, *, config: Any, inputs: dict[str, Artifact] | None = None,
                data_fingerprints: dict[str, str] | None = None, metrics: dict | None = None,
                aliases: tuple[str, ...] = ("latest",)) -> Iterator[Publication]:
        """Stage files in registry/.staging/<uuid>/, then rename into <name>/vN; all or nothing.

        If the body raises (or the process dies), nothing appears under <name>/ and no alias moves.
        """
        validate_name(name)
        if kind not in KINDS:
            raise RegistryError(f"invalid artifact kind {kind!r}: one of {', '.join(KINDS)}")
        staging = self.root / STAGING / uuid.uuid4().hex
        staging.mkdir(parents=True)
        pub = Publication(name=name, kind=kind, dir=staging, metrics=dict(metrics or {}))
        try:
            yield pub
            inputs = inputs or {}
            manifest = {
                "name": name, "kind": kind,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "config": json.loads(canonical_json(config)),
                "config_hash": config_hash(config),
                "inputs": {role: a.input_record() for role, a in inputs.items()},
                "data": dict(data_fingerprints or {}),
                "metrics": pub.metrics,
                "libraries": library_versions(),
                "git_commit": git_commit(),
                "artifact_hash": _hash_tree(staging),
                **pub.extra,
            }
            (self.root / name).mkdir(parents=True, exist_ok=True)
            for _ in range(100):  # another process may take the same version number: retry with the next
                existing = [int(v[1:]) for v in self.versions(name)] + [
                    int(p.name[1:]) for p in (self.root / name).iterdir() if VERSION_RE.match(p.name)]
                version = f"v{max(existing, default=0) + 1}"
                manifest["version"] = version
                _write_json_atomic(staging / "manifest.json", manifest)
                _fsync_tree(staging)
                try:
                    os.rename(staging, self.root / name / version)
                    break
                except OSError:
                    continue
            else:  # pragma: no cover - 100 concurrent publishers of one name
                raise RegistryError(f"could not allocate a version for {name!r}")
            for alias in aliases:
                self.set_alias(name, alias, version)
            pub.artifact = self._load(self.root / name / version)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        validate_name(alias, "alias")
        if VERSION_RE.match(alias):
            raise RegistryError(f"alias {alias!r} looks like a version; pick another name")
        if version not in self.versions(name):
            raise RegistryError(f"cannot alias {name}@{alias} -> {version}: no such version")
        al = self.aliases(name)
        al[alias] = version
        _write_json_atomic(self.root / name / "aliases.json", al)

    def gc(self, *, keep: int | None = None, dry_run: bool = False) -> list[Path]:
        """Remove leftover staging folders; with ``keep``, also old versions no alias points to."""
        removed: list[Path] = []
        st = self.root / STAGING
        if st.is_dir():
            removed += list(st.iterdir())
        if keep is not None:
            for name in self.names():
                pinned = set(self.aliases(name).values())
                vs = self.versions(name)
                old = vs[:-keep] if keep > 0 else vs
                removed += [self.root / name / v for v in old if v not in pinned]
        if not dry_run:
            for p in removed:
                shutil.rmtree(p, ignore_errors=True)
        return removed
