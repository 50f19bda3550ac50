"""A stage's run folder around its training: one writer at a time, and what is left after a publish.

- Lock: two `camelid run`s on one runs folder would both train a stage into the same checkpoint folder (and
  a fresh start clears it under the other). The job holds ``fcntl.flock`` on ``runs/<job>/<key>.lock`` while
  it trains; a second one says who holds it (pid, host, start time) and waits. The lock file sits beside the
  run folder, not in it: a fresh start removes the folder, and a lock file removed while held would let the
  next run lock a new file. The kernel drops the lock when its holder exits, however it exits.
- Prune: a published run keeps every checkpoint with its optimizer states (SmolLM2's runs reached 44 GB).
  After a successful publish, ``keep_checkpoints`` (last, by default) decides which ``checkpoint-N`` folders
  holding weights stay: the last one (what --resume continues from), all, or none. Checkpoints without
  weights (rejection sampling's per-batch answers, all of which a resume reads) are always kept.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from camelid.errors import CamelidError
from camelid.log import get_logger

log = get_logger("runs")

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
KEEP_CHOICES = ("all", "last", "none")


class RunLocked(CamelidError):
    """Another process is training this run folder (raised only when told not to wait)."""


def lock_path(folder: Path) -> Path:
    return Path(folder).with_name(Path(folder).name + ".lock")


def holder(path: Path) -> str:
    """'pid 123 on host h since 2024-05-01T10:00:00 (camelid sft)', or what is known of it."""
    try:
        info = json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or not info:
        return "another process (no details recorded)"
    return (f"pid {info.get('pid', '?')} on host {info.get('host', '?')} since {info.get('started', '?')}"
            + (f" ({info['job']})" if info.get("job") else ""))


@contextlib.contextmanager
def hold_run_folder(folder: Path, job: str, *, wait: bool = True, poll: float = 2.0) -> Iterator[bool]:
    """Hold the run folder's lock for the block; yields whether it had to wait for another holder first."""
    path = lock_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    waited = False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                who = holder(path)
                if not wait:
                    raise RunLocked(f"[{job}] {folder} is being trained by {who}; wait for it to finish (or stop "
                                    f"that process) and run again") from None
                if not waited:
                    log.info("[%s] waiting: %s is being trained by %s (Ctrl-C to stop waiting)", job, folder, who)
                waited = True
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "job": job,
                                  "started": _dt.datetime.now().isoformat(timespec="seconds")}).encode(), 0)
        yield waited
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race with a waiter)


def _holds_weights(folder: Path) -> bool:
    return any(p.suffix in WEIGHT_SUFFIXES for p in folder.rglob("*") if p.is_file())


def _step(p: Path) -> int:
    return int(p.name.rsplit("-", 1)[1])


def prune_checkpoints(folder: Path, keep: str, marker: str | None) -> list[Path]:
    """After a publish: remove the ``checkpoint-N`` folders with weights that ``keep`` does not keep; returns them."""
    from camelid.runs import CHECKPOINT_PREFIX

    if keep not in KEEP_CHOICES:
        raise ValueError(f"keep_checkpoints must be one of {', '.join(KEEP_CHOICES)}, got {keep!r}")
    folder = Path(folder)
    if keep == "all" or marker is None or not folder.is_dir():
        return []
    found = sorted((p for p in folder.glob(f"{CHECKPOINT_PREFIX}*")
                    if p.is_dir() and p.name[len(CHECKPOINT_PREFIX):].isdigit() and _holds_weights(p)), key=_step)
    complete = [p for p in found if (p / marker).is_file()]
    last = complete[-1] if keep == "last" and complete else None
    removed = [p for p in found if p != last]
    for p in removed:
        shutil.rmtree(p, ignore_errors=True)
    return removed


@contextlib.contextmanager
def held_run(cfg, registry, job) -> Iterator:
    """Around one job: its run folder locked by the main process. Yields the artifact another process published
    from the same settings and inputs while this one waited (one process only), else None: train."""
    from camelid.models import process_state
    from camelid.registry import config_hash
    from camelid.runs import run_dir
    from camelid.stage import check_before_training, resolve_inputs

    check_before_training(cfg, job)  # a missing data file is still the first thing said
    state = process_state(cfg.device)
    inputs = resolve_inputs(cfg, registry, job, state)  # every process: it holds a collective
    if not state.is_main_process:
        yield None
        return
    with hold_run_folder(run_dir(cfg, job, inputs), job.name) as waited:
        done = None
        if waited and state.num_processes == 1:
            done = registry.find_matching(job.output, config_hash(job.config), inputs)
            if done is not None:
                log.info("[%s] published meanwhile by the run that held the lock: %s (not training it again)",
                         job.name, done.ref)
        yield done


def after_publish(ctx) -> None:
    """Main process, after a successful publish: prune the run folder's checkpoints as keep_checkpoints says."""
    if not ctx.is_main:
        return
    keep = getattr(ctx.cfg, "keep_checkpoints", "last")
    removed = prune_checkpoints(ctx.run_dir, keep, ctx.job.spec.checkpoint_marker)
    if removed:
        log.info("[%s] removed %d checkpoint(s) from %s (keep_checkpoints: %s)", ctx.job.name, len(removed),
                 ctx.run_dir, keep)
