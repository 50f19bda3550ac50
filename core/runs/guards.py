"""What the stage driver guards around a job's run, so that these failures are one line and not a traceback:

- ``--resume`` from a checkpoint whose optimizer, scheduler, RNG or state file cannot be loaded safely (a
  damaged file, or a pickle that ``torch.load(weights_only=True)`` refuses) is refused before training,
  naming the file and the ways out;
- a disk that fills up (ENOSPC, EDQUOT) in the middle of a stage stops it with which stage stopped, that
  the registry is untouched (a publish is staged and renamed in whole), what its run folder keeps, and
  the command that resumes it; half-written checkpoints and staged files are removed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

from camelid.errors import CamelidError
from camelid.log import get_logger

log = get_logger("stage")

DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
# libraries that wrap the OSError in their own exception keep its words: safetensors (Rust) says
# "No space left on device (os error 28)"; torch's zip writer says only "file write failed"
_DISK_FULL_WORDS = ("No space left on device", "Disk quota exceeded", "os error 28", "os error 122")
_NEARLY_FULL = 256 << 20  # free bytes under which torch's wordless "file write failed" counts as a full disk


# ---- --resume: the checkpoint's files load safely -------------------------------------------------------

def check_resume_checkpoint(folder: Path) -> None:
    """Refuse a checkpoint whose pickled (*.pt, *.pth), JSON or safetensors files cannot be loaded safely."""
    from camelid.errors import RegistryError
    from camelid.hf.files import check_safetensors

    folder = Path(folder)
    for f in sorted(folder.iterdir()):
        why = None
        if f.suffix in (".pt", ".pth") and f.is_file():
            why = _torch_load_problem(f)
        elif f.suffix == ".json" and f.is_file():
            try:
                json.loads(f.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                why = f"not JSON: {e}"
        if why:
            raise _cannot_resume(folder, f, why)
    for f in sorted(folder.rglob("*.safetensors")):
        try:
            check_safetensors(f)
        except RegistryError as e:
            raise _cannot_resume(folder, f, str(e).split(": ", 1)[-1]) from None


def _torch_load_problem(path: Path) -> str | None:
    """Why ``torch.load(weights_only=True)`` (as the trainers call it) refuses ``path``; None if it loads.

    Memory-mapped where the file is torch's zip format: the tensors are not read, so checking a large
    optimizer state costs little.
    """
    import zipfile

    import torch

    try:  # the numpy types HF's Trainer allows in its RNG files
        from transformers.trainer_pt_utils import safe_globals
    except ImportError:
        safe_globals = contextlib.nullcontext
    try:
        with safe_globals():
            torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as e:  # UnpicklingError, RuntimeError (zip), EOFError, ...: all mean "cannot load safely"
        lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
        if lines[0].startswith("Weights only load failed"):  # torch's advice (weights_only=False) is the danger
            detail = next((line for line in lines[1:] if not line.startswith(("Please file", "Check the"))), "")
            return f"a pickle that torch.load(weights_only=True) refuses: {detail.rstrip('.')[:160]}"
        return lines[0][:200]
    return None


def _cannot_resume(folder: Path, f: Path, why: str) -> CamelidError:
    return CamelidError(f"--resume: {f} cannot be loaded safely ({why}); delete the checkpoint folder {folder} to "
                        "resume from an earlier checkpoint (or from the start), or run without --resume")


# ---- a full disk in the middle of a stage ----------------------------------------------------------------

def disk_full_reason(exc: BaseException | None, where: Path | None = None) -> str | None:
    """'No space left on device' (or the quota's words) when ``exc`` or what it wraps is a full disk."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return os.strerror(exc.errno)
        text = str(exc)
        for words in _DISK_FULL_WORDS:
            if words in text:
                return os.strerror(errno.EDQUOT if "122" in words or "quota" in words else errno.ENOSPC)
        if "file write failed" in text and where is not None and _free_bytes(where) < _NEARLY_FULL:
            return f"{os.strerror(errno.ENOSPC)} (a write failed with {_free_bytes(where) >> 20} MB left)"
        exc = exc.__cause__ or exc.__context__
    return None


def _free_bytes(path: Path) -> int:
    for p in (Path(path), *Path(path).parents):
        if p.exists():
            return shutil.disk_usage(p).free
    return 1 << 62


@contextlib.contextmanager
def stopped_by_full_disk(ctx):
    """Around a stage's run: a full disk becomes one CamelidError saying what stopped, what was kept, and how
    to resume; half-written checkpoints are removed (the staged publish removes itself)."""
    job, registry = ctx.job, ctx.registry
    before = set(registry.versions(job.output))
    try:
        yield
    except Exception as e:
        reason = disk_full_reason(e, ctx.run_dir)
        if reason is None:
            raise
        removed = _remove_half_written(ctx) if ctx.is_main else []
        published = sorted(set(registry.versions(job.output)) - before)
        kept_registry = (f"{job.output}@{published[-1]} was published before it stopped" if published else
                         "the registry is untouched (a publish is staged and goes in whole or not at all)")
        raise CamelidError(
            f"[{job.name}] stopped: {reason}. {kept_registry[0].upper()}{kept_registry[1:]}; "
            f"{_kept_checkpoints(ctx)}{'; removed the half-written ' + ', '.join(removed) if removed else ''}. "
            f"Free some space, then resume: {resume_command(ctx)}") from e


def _remove_half_written(ctx) -> list[str]:
    """Checkpoint folders in the run folder that never finished saving (no marker), and temporary ones."""
    from camelid.runs import CHECKPOINT_PREFIX

    marker = ctx.job.spec.checkpoint_marker
    removed = []
    if ctx.run_dir.is_dir():
        for p in sorted(ctx.run_dir.iterdir()):
            half = p.name.startswith((".tmp", "tmp-")) or (
                p.name.startswith(CHECKPOINT_PREFIX) and marker is not None and not (p / marker).exists())
            if half and p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p.name)
    with contextlib.suppress(OSError):  # a name folder the failed publish made and left empty
        (ctx.registry.root / ctx.job.output).rmdir()
    return removed


def _kept_checkpoints(ctx) -> str:
    from camelid.runs import latest_checkpoint

    marker = ctx.job.spec.checkpoint_marker
    if marker is None:
        return f"{ctx.job.name} keeps no checkpoints, so it runs again from the start"
    last = latest_checkpoint(ctx.run_dir, marker)
    if last is None:
        return f"its run folder {ctx.run_dir} holds no complete checkpoint yet, so it restarts from the beginning"
    return f"its run folder {ctx.run_dir} keeps {last.name}, where --resume continues"


def resume_command(ctx) -> str:
    """The command line that was run, with --resume; without one (scripts, tests), the stage's own command."""
    argv = list(sys.argv)
    if argv and Path(argv[0]).name == "camelid" and len(argv) > 1:
        return shlex.join(["camelid", *argv[1:], *([] if "--resume" in argv else ["--resume"])])
    parts = ["camelid", ctx.job.stage]
    if ctx.cfg.profile:
        parts += ["--profile", ctx.cfg.profile]
    parts += ["--registry", str(ctx.registry.root), "--resume"]
    return shlex.join(parts)
