"""File-level machinery of the registry: digests and integrity checks, durable writes, staging locks.

Every published file is recorded in its manifest as ``{"size", "sha256", "sample"}``. Loading an artifact
does the fast check (sizes, plus ``sample``: a sha256 of up to 16 blocks of 64 KiB spread over the file,
i.e. the whole file when it is at most 1 MiB); `camelid registry verify` recomputes every sha256.

A publish holds an exclusive ``flock`` on ``.staging/<uuid>.lock`` (holding ``pid host``) from before its
folder exists until after it is gone; the kernel drops the lock when the writer dies, kill -9 included, so
`gc` can tell a live publish from a dead one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: gc falls back to the writer's pid
    fcntl = None  # type: ignore[assignment]

SAMPLE_BLOCK = 64 << 10
SAMPLE_BLOCKS = 16
LOCK_SUFFIX = ".lock"
STARTING_GRACE_S = 60.0  # a lock file without its owner line yet: a publish in its first instant


# ---- digests -----------------------------------------------------------------------------------
def tree_files(root: Path) -> list[Path]:
    """The files an artifact consists of: everything under root except manifest files."""
    return [p for p in sorted(root.rglob("*")) if p.is_file() and p.name != "manifest.json"]


def hash_tree(root: Path, *, contents: bool = True) -> str:
    """sha256 over relative paths and file bytes (or sizes when contents=False) under root."""
    h = hashlib.sha256()
    for p in tree_files(root):
        h.update(str(p.relative_to(root)).encode() + b"\0")
        if contents:
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        else:
            h.update(str(p.stat().st_size).encode())
    return h.hexdigest()[:16]


def sample_digest(path: Path, size: int) -> str:
    """Cheap content check: sha256 of SAMPLE_BLOCKS blocks at fixed offsets (the whole file if small)."""
    h = hashlib.sha256(str(size).encode() + b"\0")
    with open(path, "rb") as f:
        if size <= SAMPLE_BLOCK * SAMPLE_BLOCKS:
            h.update(f.read())
        else:
            step = (size - SAMPLE_BLOCK) / (SAMPLE_BLOCKS - 1)
            for i in range(SAMPLE_BLOCKS):
                f.seek(int(i * step))
                h.update(f.read(SAMPLE_BLOCK))
    return h.hexdigest()[:32]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def digest_tree(root: Path) -> tuple[str, dict[str, dict]]:
    """(artifact hash as `hash_tree` computes it, per-file records), reading each file once."""
    tree = hashlib.sha256()
    files: dict[str, dict] = {}
    for p in tree_files(root):
        rel = p.relative_to(root)
        tree.update(str(rel).encode() + b"\0")
        one = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                tree.update(chunk)
                one.update(chunk)
        size = p.stat().st_size
        files[rel.as_posix()] = {"size": size, "sha256": one.hexdigest(), "sample": sample_digest(p, size)}
    return tree.hexdigest()[:16], files


def file_records_problem(files: Any) -> str | None:
    """Why a manifest's ``files`` field cannot be trusted, or None."""
    if not isinstance(files, dict):
        return "field 'files' must be a JSON object"
    for rel, rec in files.items():
        parts = Path(rel).parts
        if not rel or Path(rel).is_absolute() or ".." in parts:
            return f"field 'files' has an unsafe path {rel!r}"
        if not (isinstance(rec, dict) and isinstance(rec.get("size"), int) and isinstance(rec.get("sha256"), str)
                and isinstance(rec.get("sample"), str)):
            return f"field 'files.{rel}' must have an integer 'size' and string 'sha256' and 'sample'"
    return None


def file_problems(root: Path, files: dict[str, dict], *, full: bool, artifact_hash: str | None = None) -> list[str]:
    """What differs between the files under root and their published records (empty: all good).

    ``full`` recomputes every sha256 and, given the manifest's ``artifact_hash``, the hash over the whole tree
    from the same read: a manifest whose per-file records match while its artifact_hash does not was changed
    after publishing (and that hash is what later stages compare to call themselves up to date).
    """
    digests, tree = _full_digests(root) if full else ({}, None)
    problems = []
    for rel, rec in sorted(files.items()):
        p = root / rel
        try:
            size = p.stat().st_size
        except OSError:
            problems.append(f"{rel} is missing")
            continue
        if size != rec["size"]:
            problems.append(f"{rel} is {size} bytes, published as {rec['size']}")
            continue
        try:
            if full:
                digest = digests.get(rel) or file_sha256(p)
                if isinstance(digest, OSError):
                    raise digest
                same = digest == rec["sha256"]
            else:
                same = sample_digest(p, size) == rec["sample"]
        except OSError as e:
            problems.append(f"{rel} is unreadable ({e.strerror or e})")
            continue
        if not same:
            problems.append(f"{rel}: sha256 differs from the published one" if full
                            else f"{rel} differs from the published file")
    extra = sorted({p.relative_to(root).as_posix() for p in tree_files(root)} - set(files))
    problems += [f"{rel} was added after publishing" for rel in extra]
    if full and artifact_hash and not problems and tree != artifact_hash:
        problems.append(f"manifest.json: artifact_hash {artifact_hash} does not match the files (they hash to "
                        f"{tree}): the manifest was edited after publishing; restore it from a copy, or publish "
                        "a new version")
    return problems


def _full_digests(root: Path) -> tuple[dict[str, str | OSError], str | None]:
    """({relative path: sha256 or the OSError reading it}, tree hash as `hash_tree` computes it or None),
    reading each file once."""
    tree = hashlib.sha256()
    digests: dict[str, str | OSError] = {}
    for p in tree_files(root):
        rel = p.relative_to(root)
        tree.update(str(rel).encode() + b"\0")
        one = hashlib.sha256()
        try:
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    tree.update(chunk)
                    one.update(chunk)
        except OSError as e:
            digests[rel.as_posix()] = e
            continue
        digests[rel.as_posix()] = one.hexdigest()
    complete = not any(isinstance(d, OSError) for d in digests.values())
    return digests, tree.hexdigest()[:16] if complete else None


# ---- durable writes ----------------------------------------------------------------------------
def fsync_path(path: Path) -> None:
    """Flush a file or folder to disk; best effort, as some filesystems refuse fsync on a folder."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_tree(root: Path) -> None:
    for p in sorted(root.rglob("*"), reverse=True):
        fsync_path(p)
    fsync_path(root)


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (created if needed): serialises read-modify-write of a file."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            with contextlib.suppress(OSError):  # no file locks on this filesystem: best effort
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# ---- staging: who is writing what ----------------------------------------------------------------
@contextlib.contextmanager
def staging_folder(staging_root: Path) -> Iterator[Path]:
    """A fresh ``staging_root/<uuid>/``, locked for its whole life; removed (with its lock) on exit."""
    staging_root.mkdir(parents=True, exist_ok=True)
    folder = staging_root / uuid.uuid4().hex
    lock = folder.with_name(folder.name + LOCK_SUFFIX)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        if fcntl is not None:
            with contextlib.suppress(OSError):  # unsupported here: gc then goes by the pid below
                fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        folder.mkdir()
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _why_alive(fd: int) -> str | None:
    """None when the writer that created this lock file is gone, else why it may still be writing."""
    has_lock = False
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            has_lock = True
        except BlockingIOError:
            owner = os.pread(fd, 200, 0).decode(errors="replace").split()
            return "still being written" + (f" (pid {owner[0]})" if owner else "")
        except OSError:
            pass  # no file locks on this filesystem
    owner = os.pread(fd, 200, 0).decode(errors="replace").split()
    if not owner:
        young = time.time() - os.fstat(fd).st_mtime < STARTING_GRACE_S
        return "a publish is starting" if young or not has_lock else None
    if has_lock:
        return None
    pid, host = int(owner[0]) if owner[0].isdigit() else -1, owner[1] if len(owner) > 1 else ""
    if host != socket.gethostname():
        return f"cannot tell whether its writer (pid {pid} on {host}) is alive: no file locks here"
    return f"its writer (pid {pid}) is still running" if _pid_alive(pid) else None


@contextlib.contextmanager
def dead_writer(lock: Path) -> Iterator[str | None]:
    """Yield None when the publish owning ``lock`` is gone (keeping its lock meanwhile), else why not.

    No lock file at all means a leftover of a camelid without staging locks, or a writer that just
    finished (which removes its folder before its lock): either way nobody is writing.
    """
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        yield None
        return
    except OSError as e:  # e.g. a folder named like a lock: leave it alone
        yield f"cannot open {lock.name} to check its writer ({e.strerror or e})"
        return
    try:
        yield _why_alive(fd)
    finally:
        os.close(fd)


def remove_path(p: Path) -> str | None:
    """Delete ``p`` (a symlink: only the link, never what it points to); None once it is gone, else why not."""
    try:
        if p.is_symlink() or not p.is_dir():
            p.unlink()
        else:
            shutil.rmtree(p)
    except FileNotFoundError:
        pass
    except OSError as e:
        return f"could not remove it ({e.strerror or e})"
    return "could not remove it" if os.path.lexists(p) else None


def rename_error(e: OSError, src: Path, dst: Path) -> str:
    """A one-line explanation of why the staged artifact could not be renamed into place."""
    if e.errno == errno.EXDEV:
        return (f"cannot move {src} to {dst}: they are on different filesystems. Keep the whole registry "
                f"(including {src.parent.name}/ and {dst.parent.name}/) on one filesystem; do not symlink its folders elsewhere")
    return f"cannot move {src} to {dst}: {e.strerror or e}"
