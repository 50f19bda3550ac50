"""The local artifact registry (docs/design.md, "The registry"): versioned folders with a manifest, published atomically.

    registry/<name>/<version>/manifest.json + files (model/ is a save_pretrained folder); the manifest
                                            records each file's size and sha256, checked on load
    registry/<name>/aliases.json            {"best": "v2"}  (``latest`` is derived: the newest version)
    registry/.staging/<uuid>/ + <uuid>.lock a publish in progress, locked by its writer

Refs: ``name`` (= latest), ``name@v2``, ``name@best``; a local path (``./x``, ``/x``, ``~/x``); a Hub id
(``hf:gpt2`` or anything with a slash that is not a local path, e.g. ``meta-llama/Llama-2-7b-hf``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from camelid.errors import RegistryError
from camelid.log import get_logger
from camelid.registry.files import (
    LOCK_SUFFIX,
    dead_writer,
    digest_tree,
    file_problems,
    file_records_problem,
    fsync_path,
    fsync_tree,
    locked,
    remove_path,
    rename_error,
    staging_folder,
)
from camelid.registry.files import hash_tree as _hash_tree
from camelid.registry.files import write_json_atomic as _write_json_atomic

log = get_logger("registry")

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
VERSION_RE = re.compile(r"^v([1-9][0-9]*)$")
STAGING = ".staging"
MAX_NAME = 128  # well under the 255-byte limit on a file name, with room for the tmp/lock suffixes
LATEST = "latest"  # derived: always the newest published version, never stored


def validate_name(name: str, what: str = "artifact name") -> str:
    """Names are folder names: lowercase, no slashes, no leading dot (so no path traversal)."""
    if isinstance(name, str) and len(name) > MAX_NAME:
        raise RegistryError(f"invalid {what} {name[:24] + '...'!r}: {len(name)} characters long, "
                            f"at most {MAX_NAME}; pick a shorter name")
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise RegistryError(f"invalid {what} {name!r}: use lowercase letters, digits, '.', '_' and '-', "
                            "starting with a letter or digit")
    return name


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(config: Any) -> str:
    """Stable hash of a resolved config (what `camelid run` compares to decide a stage is up to date)."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]


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


class BrokenArtifactError(RegistryError):
    """A version folder whose manifest cannot be read or trusted; ``reason`` is the short why (for listings)."""

    def __init__(self, where: str, path: Path, reason: str):
        super().__init__(f"{where} is unusable: {reason} (in {path}); restore that file from a copy, "
                         "or delete the version folder")
        self.reason = reason


@dataclass
class GcReport:
    """What `Registry.gc` removed (or would remove, on a dry run), and what it kept and why."""

    removed: list[Path] = field(default_factory=list)
    kept: list[tuple[Path, str]] = field(default_factory=list)


def manifest_problem(m: Any) -> str | None:
    """Why a parsed manifest cannot be used (a hand edit, a truncated write, another program), or None."""
    if not isinstance(m, dict):
        return "not a JSON object"
    for key in ("name", "version", "kind"):
        if key not in m:
            return f"missing field {key!r}"
        if not isinstance(m[key], str):
            return f"field {key!r} must be a string"
    for key in ("inputs", "metrics", "data"):
        if not isinstance(m.get(key, {}), dict):
            return f"field {key!r} must be a JSON object"
    for role, rec in m.get("inputs", {}).items():
        if not isinstance(rec, dict) or not isinstance(rec.get("ref"), str):
            return f"field 'inputs.{role}' must be an object with a string 'ref'"
    return file_records_problem(m["files"]) if "files" in m else None


def _registry_input(rec: dict) -> tuple[str, str] | None:
    """(name, version) of the registry artifact an input record names; None for a path or Hub id (or junk)."""
    name, version = rec.get("name"), rec.get("version")
    if rec.get("external") or not isinstance(name, str) or not isinstance(version, str):
        return None
    return (name, version) if NAME_RE.match(name) and VERSION_RE.match(version) else None


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
        """Published versions, oldest first: version folders with a manifest (a publish renames both in at once)."""
        d = self.root / name
        if not d.is_dir():
            return []
        vs = [p.name for p in d.iterdir() if p.is_dir() and VERSION_RE.match(p.name)
              and (p / "manifest.json").is_file()]
        return sorted(vs, key=lambda v: int(v[1:]))

    def _stored_aliases(self, name: str) -> dict[str, str]:
        p = self.root / name / "aliases.json"
        if not p.is_file():
            return {}
        try:
            al = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            raise RegistryError(f"{p}: unreadable aliases file ({e}); fix or delete it, then set aliases again "
                                "with `camelid registry alias`") from None
        if not isinstance(al, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in al.items()):
            raise RegistryError(f'{p}: an aliases file maps alias names to versions, like {{"best": "v2"}}; '
                                "fix or delete it, then set aliases again with `camelid registry alias`")
        al.pop(LATEST, None)  # stored by older camelid versions; derived now
        return al

    def aliases(self, name: str) -> dict[str, str]:
        """Aliases set with `set_alias`, plus ``latest``: always the newest published version."""
        al = self._stored_aliases(name)
        versions = self.versions(name)
        if versions:
            al[LATEST] = versions[-1]
        return al

    def pin(self, name: str, version: str) -> None:
        """Make a bare ``name`` resolve to ``version`` (used by `camelid run` within one pipeline run)."""
        self._pins[name] = version

    def _describe(self) -> str:
        names = self.names()
        if not names:
            return (f"the registry at {self.root} is empty (run `camelid init` for the toy base, `camelid import "
                    "SOURCE --name NAME` for a model of your own, or a stage first)")
        parts = []
        for n in names:
            try:
                extra = ", ".join(f"{k}={v}" for k, v in sorted(self.aliases(n).items()))
            except RegistryError:
                extra = "aliases.json unreadable"
            parts.append(f"{n} ({', '.join(self.versions(n))}{'; ' + extra if extra else ''})")
        return f"the registry at {self.root} has: " + "; ".join(parts)

    def resolve(self, ref: str, *, verify: bool = True) -> Artifact:
        """Resolve a ref to an artifact; external models (path / Hub id) resolve without a manifest.

        ``verify``: refuse a registry artifact whose files changed since publishing (the fast check:
        sizes and sampled digests; `camelid registry verify` compares full hashes).
        """
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
                art = self._load(p)
                return self._verified(art) if verify else art
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
            sel = self._pins.get(name) or versions[-1]
        elif not VERSION_RE.match(sel):
            validate_name(sel, "alias")
            alias = self.aliases(name)
            if sel not in alias:
                raise RegistryError(f"unknown alias {sel!r} for {name!r}: has versions {', '.join(versions)}"
                                    f"{' and aliases ' + ', '.join(sorted(alias)) if alias else ''}")
            sel = alias[sel]
        if sel not in versions:
            raise RegistryError(f"unknown version {name}@{sel}: {name} has {', '.join(versions)}")
        art = self._load(self.root / name / sel, (name, sel))
        return self._verified(art) if verify else art

    def _load(self, path: Path, expect: tuple[str, str] | None = None) -> Artifact:
        """The artifact in a version folder; ``expect`` = the (name, version) its place in the registry implies."""
        where = f"{expect[0]}@{expect[1]}" if expect else str(path)
        try:
            manifest = json.loads((path / "manifest.json").read_text())
        except OSError as e:
            raise BrokenArtifactError(where, path, f"manifest.json: unreadable ({e.strerror or e})") from None
        except ValueError as e:
            raise BrokenArtifactError(where, path, f"manifest.json: not valid JSON ({e})") from None
        problem = manifest_problem(manifest)
        if problem is None and expect and (manifest["name"], manifest["version"]) != expect:
            problem = f"it says it is {manifest['name']}@{manifest['version']}"
        if problem:
            raise BrokenArtifactError(where, path, f"manifest.json: {problem}")
        return Artifact(name=manifest["name"], version=manifest["version"], path=path, manifest=manifest)

    def check_files(self, art: Artifact, *, full: bool = False) -> list[str]:
        """How a published artifact's files differ from its manifest: the fast check, or (``full``) every sha256."""
        if art.external or art.path is None:
            return []
        files = art.manifest.get("files")
        if files is not None:
            return file_problems(art.path, files, full=full, artifact_hash=art.hash)
        if full and art.hash and _hash_tree(art.path) != art.hash:  # published before per-file records
            return ["files differ from the published artifact_hash (no per-file records to say which)"]
        return []

    def _verified(self, art: Artifact) -> Artifact:
        problems = self.check_files(art)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise RegistryError(f"{art.ref} ({art.path}) changed after publishing: {problems[0]}{more}; restore "
                                f"it or publish a new version (`camelid registry verify {art.ref}` lists every "
                                "difference)")
        return art

    def find_matching(self, name: str, cfg_hash: str, inputs: dict[str, Artifact]) -> Artifact | None:
        """The newest version of ``name`` built from this config hash and these exact inputs, if any.

        An unreadable version matches nothing; a match whose files changed since publishing raises
        RegistryError rather than passing for up to date.
        """
        want = {role: a.hash for role, a in inputs.items()}
        for v in reversed(self.versions(name)):
            try:
                art = self._load(self.root / name / v, (name, v))
            except BrokenArtifactError as e:
                log.warning("skipping %s", e)
                continue
            have = {role: rec.get("hash") for role, rec in art.manifest.get("inputs", {}).items()}
            if art.manifest.get("config_hash") == cfg_hash and have == want:
                return self._verified(art)
        return None

    def lineage_problems(self, art: Artifact) -> list[str]:
        """The inputs ``art`` was built from that the registry no longer holds as published (removed, or
        another artifact now under the same version)."""
        problems = []
        for role, rec in sorted(art.manifest.get("inputs", {}).items()):
            held_at = _registry_input(rec)
            if held_at is None:
                continue  # a local path or Hub id: not the registry's to keep
            name, version = held_at
            if version not in self.versions(name):
                problems.append(f"lineage: input {role} {name}@{version} is missing (removed after {art.ref} was "
                                "built from it)")
                continue
            try:
                held = self._load(self.root / name / version, (name, version))
            except BrokenArtifactError as e:
                problems.append(f"lineage: input {role} {name}@{version} is unusable ({e.reason})")
                continue
            if rec.get("hash") and held.hash != rec["hash"]:
                problems.append(f"lineage: input {role} {name}@{version} is not the artifact {art.ref} was built "
                                f"from (hash {held.hash}, built from {rec['hash']})")
        return problems

    def lineage(self, ref: str) -> list[tuple[int, str, Artifact]]:
        """Depth-first list of (depth, role, artifact) from ``ref`` back through its inputs."""
        out: list[tuple[int, str, Artifact]] = []

        def walk(art: Artifact, role: str, depth: int, seen: frozenset) -> None:
            out.append((depth, role, art))
            if art.external or art.ref in seen:
                return
            for r, rec in sorted(art.manifest.get("inputs", {}).items()):
                try:
                    child = self.resolve(rec["ref"], verify=False) if not rec.get("external") else Artifact(
                        name=rec.get("name") or rec["ref"], version=None, path=None, external=rec["external"],
                        manifest={"artifact_hash": rec.get("hash", "")})
                except RegistryError as e:
                    why = "broken" if isinstance(e, BrokenArtifactError) else "missing"
                    child = Artifact(name=f"{rec['ref']} ({why})", version=None, path=None, external=why)
                walk(child, r, depth + 1, seen | {art.ref})

        walk(self.resolve(ref, verify=False), "", 0, frozenset())
        return out

    # ---- writing -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def publish(self, name: str, kind: str, *, config: Any, inputs: dict[str, Artifact] | None = None,
                data_fingerprints: dict[str, str] | None = None, metrics: dict | None = None,
                aliases: tuple[str, ...] = (LATEST,)) -> Iterator[Publication]:
        """Stage files in registry/.staging/<uuid>/, then rename into <name>/vN; all or nothing.

        If the body raises (or the process dies), nothing appears under <name>/ and no alias moves.
        ``latest`` needs no writing: it is derived from the published versions.
        """
        validate_name(name)
        from camelid.stages import artifact_kinds  # the kinds the registered stages declare

        if kind not in (kinds := artifact_kinds()):
            raise RegistryError(f"invalid artifact kind {kind!r}: one of {', '.join(kinds)}")
        for alias in aliases:
            validate_name(alias, "alias")
        with staging_folder(self.root / STAGING) as staging:
            pub = Publication(name=name, kind=kind, dir=staging, metrics=dict(metrics or {}))
            yield pub
            manifest = self._manifest(pub, config, inputs or {}, data_fingerprints or {})
            version = self._move_into_place(staging, name, manifest)
            for alias in aliases:
                if alias != LATEST:
                    self.set_alias(name, alias, version)
            pub.artifact = self._load(self.root / name / version, (name, version))

    @staticmethod
    def _manifest(pub: Publication, config: Any, inputs: dict[str, Artifact], data: dict[str, str]) -> dict:
        tree_hash, files = digest_tree(pub.dir)
        return {
            "name": pub.name, "kind": pub.kind,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "config": json.loads(canonical_json(config)),
            "config_hash": config_hash(config),
            "inputs": {role: a.input_record() for role, a in inputs.items()},
            "data": dict(data),
            "metrics": pub.metrics,
            "libraries": library_versions(),
            "git_commit": git_commit(),
            "artifact_hash": tree_hash,
            **pub.extra,
            "files": files,
        }

    def _move_into_place(self, staging: Path, name: str, manifest: dict) -> str:
        """Rename the staged folder to <name>/vN with the next free N (never over a published one); returns vN."""
        dest = self.root / name
        dest.mkdir(parents=True, exist_ok=True)
        fsync_tree(staging)
        for _ in range(100):  # another process may take the same version number: retry with the next
            taken = [int(p.name[1:]) for p in dest.iterdir() if VERSION_RE.match(p.name)]
            version = f"v{max(taken, default=0) + 1}"
            manifest["version"] = version
            _write_json_atomic(staging / "manifest.json", manifest)
            fsync_path(staging)
            try:
                os.rename(staging, dest / version)
            except OSError as e:
                if e.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                    continue  # taken meanwhile (a rename never replaces a non-empty folder)
                raise RegistryError(rename_error(e, staging, dest / version)) from None
            fsync_path(dest)
            return version
        raise RegistryError(f"could not allocate a version for {name!r}: 100 tries collided with other "
                            "publishers of the same name; try again")

    def set_alias(self, name: str, alias: str, version: str) -> None:
        validate_name(name)
        validate_name(alias, "alias")
        if VERSION_RE.match(alias):
            raise RegistryError(f"alias {alias!r} looks like a version; pick another name")
        versions = self.versions(name)
        if alias == LATEST:
            raise RegistryError(f"'latest' always names the newest version of {name} "
                                f"({versions[-1] if versions else 'none yet'}); refer to {name}@{version} "
                                "or pick another alias, e.g. best")
        if version not in versions:
            raise RegistryError(f"cannot alias {name}@{alias} -> {version}: no such version")
        with locked(self.root / name / ".aliases.lock"):  # concurrent set_alias calls must not drop each other's
            al = self._stored_aliases(name)
            al[alias] = version
            _write_json_atomic(self.root / name / "aliases.json", al)

    # ---- cleaning ------------------------------------------------------------------------------
    def gc(self, *, keep: int | None = None, dry_run: bool = False, drop_lineage: bool = False) -> GcReport:
        """Remove staging folders whose publish is gone (never a live one); with ``keep``, also all but the
        ``keep`` newest versions of each name, except those an alias (``latest`` included) names and those a
        kept version was built from, however far back (``drop_lineage``: remove those too)."""
        if keep is not None and keep < 0:
            raise RegistryError(f"gc: --keep must be 0 or more (how many newest versions to keep besides "
                                f"aliased ones), got {keep}")
        report = GcReport()
        self._gc_staging(report, dry_run)
        if keep is None:
            return report
        kept: set[tuple[str, str]] = set()
        doomed: list[tuple[str, str]] = []
        for name in self.names():
            try:
                named = set(self.aliases(name).values())
            except RegistryError as e:
                report.kept.append((self.root / name, f"not cleaned: {e}"))
                kept.update((name, v) for v in self.versions(name))
                continue
            vs = self.versions(name)
            old = vs[:max(len(vs) - keep, 0)]
            doomed += [(name, v) for v in old if v not in named]
            kept.update((name, v) for v in vs if v in named or v not in old)
        needed = self._needed_by(kept)
        for name, v in doomed:
            users = needed.get((name, v))
            if users and not drop_lineage:
                report.kept.append((self.root / name / v, f"in the lineage of {', '.join(sorted(users))} "
                                    "(--drop-lineage removes it anyway)"))
                continue
            if users:
                log.warning("gc --drop-lineage: %s %s@%s breaks the lineage of %s",
                            "removing" if not dry_run else "(dry run) removing", name, v, ", ".join(sorted(users)))
            self._gc_remove(self.root / name / v, report, dry_run)
        return report

    def _needed_by(self, kept: set[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
        """(name, version) -> the kept artifacts whose lineage reaches it (through inputs, however deep)."""
        needed: dict[tuple[str, str], set[str]] = {}
        todo = [(nv, f"{nv[0]}@{nv[1]}") for nv in sorted(kept)]
        seen: set[tuple[tuple[str, str], str]] = set()
        while todo:
            (name, v), user = todo.pop()
            try:
                inputs = self._load(self.root / name / v, (name, v)).manifest.get("inputs", {})
            except BrokenArtifactError:
                continue
            for rec in inputs.values():
                dep = _registry_input(rec)
                if dep is None or (dep, user) in seen:
                    continue
                seen.add((dep, user))
                needed.setdefault(dep, set()).add(user)
                todo.append((dep, user))
        return needed

    def _gc_staging(self, report: GcReport, dry_run: bool) -> None:
        st = self.root / STAGING
        if not st.is_dir():
            return
        entries = sorted(st.iterdir())
        names = {p.name for p in entries}
        for p in entries:
            owner = p.name[:-len(LOCK_SUFFIX)] if p.name.endswith(LOCK_SUFFIX) else None
            if owner in names:
                continue  # a lock: handled with its folder
            lock = p if owner is not None else p.with_name(p.name + LOCK_SUFFIX)
            with dead_writer(lock) as why_alive:
                if why_alive:
                    report.kept.append((p, why_alive))
                elif os.path.lexists(p) and self._gc_remove(p, report, dry_run) and not dry_run and p != lock:
                    with contextlib.suppress(OSError):
                        lock.unlink()  # while still holding it: no writer can come back to it

    @staticmethod
    def _gc_remove(p: Path, report: GcReport, dry_run: bool) -> bool:
        why = None if dry_run else remove_path(p)
        if why:
            report.kept.append((p, why))
        else:
            report.removed.append(p)
        return why is None
