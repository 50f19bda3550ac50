"""Run folders and the fresh-or-resume policy, the same for every stage.

A job's run folder is ``runs/<job name>/<key>``, where the key hashes its settings and its inputs' content
hashes, *leaving out* the keys its job declares may change on --resume (iterations, max_steps, epochs,
eval/save cadence, logging). So `camelid ppo --resume stages.ppo.iterations=300` finds the run it
continues. The folder keeps ``job.json`` (the settings it was started with).

- Fresh run (no --resume): old checkpoints in the folder are removed, so they can't mix with the new run.
- --resume with a checkpoint for these settings: continue from the newest one.
- --resume without one, while a run of the same job with *other* settings has checkpoints: an error that
  names the keys that differ (never a silent fresh start).
- --resume with no checkpoint at all: start from the beginning, and say so.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from camelid.errors import ConfigError
from camelid.log import get_logger
from camelid.registry import Artifact, config_hash

log = get_logger("runs")

CHECKPOINT_PREFIX = "checkpoint-"
JOB_FILE = "job.json"


def latest_checkpoint(folder: Path, marker: str) -> Path | None:
    """The newest ``checkpoint-N`` folder in ``folder`` that finished saving (holds ``marker``), if any."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    done = [p for p in folder.glob(f"{CHECKPOINT_PREFIX}*")
            if p.name[len(CHECKPOINT_PREFIX):].isdigit() and (p / marker).is_file()]
    return max(done, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]), default=None)


def run_settings(job, inputs: dict[str, Artifact]) -> dict:
    """What identifies a run: settings minus the resumable keys, shared settings, input hashes.

    A setting that names an input (stages.ppo.policy: sft) is left out too: the input's content hash stands
    for it, so `sft` and `sft@v1` naming the same model are the same run.
    """
    resume_keys = job.spec.resume_keys
    section = {k: v for k, v in job.section.items() if k not in resume_keys and not _names_input(job, k)}
    return {"section": section,
            "shared": job.shared, "inputs": {role: a.hash for role, a in sorted(inputs.items())}}


def _names_input(job, key: str) -> bool:
    """Whether section[key] is the reference of the job's input of the same role."""
    return key in job.inputs and job.section.get(key) == job.inputs[key]


def _comparable(job, old: dict, new: dict) -> dict:
    """``old`` run settings without the input references that ``new`` leaves out (job.json of older runs kept
    them: `sft` there and `sft@v1` now are the same run when the input hashes agree)."""
    section = old.get("section")
    if not isinstance(section, dict):
        return old
    dropped = {k for k in job.inputs if k not in new["section"]}
    return {**old, "section": {k: v for k, v in section.items() if k not in dropped}}


def run_dir(cfg, job, inputs: dict[str, Artifact]) -> Path:
    """The job's checkpoint folder: the same settings and inputs give the same folder."""
    return cfg.runs_path() / job.name / config_hash(run_settings(job, inputs))


def changed_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two run-settings dicts."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        key = f"{prefix}{k}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += changed_keys(a, b, key + ".")
        elif a != b:
            out.append(f"{key} ({a!r} -> {b!r})")
    return out


def _describe_differences(job, old: dict, new: dict) -> list[str]:
    names = []
    for key in changed_keys(old, new):
        top, _, rest = key.partition(".")
        if top == "section":
            names.append(f"{job.where or 'stages.' + job.stage}.{rest}")
        elif top == "shared":
            names.append(f"shared.{rest}")
        else:
            names.append(f"input {rest} (a different model)")
    return names


def other_runs(folder: Path, marker: str) -> list[Path]:
    """Sibling run folders of the same job that hold a checkpoint and their job.json, newest first."""
    parent = folder.parent
    if not parent.is_dir():
        return []
    found = [p for p in parent.iterdir() if p != folder and (p / JOB_FILE).is_file() and latest_checkpoint(p, marker)]
    return sorted(found, key=lambda p: (p / JOB_FILE).stat().st_mtime, reverse=True)


def choose_run(cfg, job, inputs: dict[str, Artifact], *, resume: bool, state) -> tuple[Path, Path | None]:
    """(run folder, checkpoint to resume from or None), after applying the fresh-or-resume policy."""
    folder = run_dir(cfg, job, inputs)
    settings = run_settings(job, inputs)
    marker = job.spec.checkpoint_marker
    checkpoint = latest_checkpoint(folder, marker) if marker else None
    if marker is None:  # a stage without checkpoints (init, compare) has nothing to resume or clear
        if resume:
            log.info("[%s] keeps no checkpoints: --resume runs it from the beginning", job.name)
        return folder, None
    if resume and checkpoint is not None:
        log.info("[%s] --resume: continuing from %s", job.name, checkpoint)
        return folder, checkpoint
    if resume:
        others = [(other, _describe_differences(job, _comparable(job, json.loads((other / JOB_FILE).read_text()),
                                                                 settings), settings))
                  for other in other_runs(folder, marker)]
        for other, diff in others:
            if not diff:  # the same run, in a folder named by an older camelid's key
                checkpoint = latest_checkpoint(other, marker)
                log.info("[%s] --resume: continuing from %s", job.name, checkpoint)
                return other, checkpoint
        for other, diff in others[:1]:
            raise ConfigError(
                f"--resume: the checkpoints of {job.name} in {other} were made with other settings: "
                f"{'; '.join(diff)}. Only {', '.join(sorted(job.spec.resume_keys)) or 'no keys'} may change on "
                f"resume. Use the same settings, or drop --resume to start a fresh run.")
        log.info("[%s] --resume: no checkpoint in %s yet, starting from the beginning", job.name, folder)
    _start_fresh(folder, settings, job, state)
    return folder, None


def _start_fresh(folder: Path, settings: dict, job, state) -> None:
    """Main process: clear the folder of an earlier run's checkpoints and record these settings."""
    state.wait_for_everyone()
    if state.is_main_process:
        if folder.exists() and any(folder.iterdir()):
            log.info("[%s] starting fresh: removing the earlier run's files in %s (pass --resume to continue "
                     "them)", job.name, folder)
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / JOB_FILE).write_text(json.dumps(settings, indent=1, sort_keys=True) + "\n")
    state.wait_for_everyone()
