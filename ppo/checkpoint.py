"""PPO checkpoints and early stopping: what a run writes so it can resume exactly, and the best policy kept.

checkpoint-<iteration>/ holds policy/ and value/ (save_pretrained folders; LoRA: adapters; no value/ and no value
optimizer with a critic-free estimator), the optimizers,
each process's RNG states, and state.json (iteration, running reward statistics, history, evals, early
stopping) written last: a folder with state.json is complete. Only the newest checkpoint is kept.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
from pathlib import Path

import torch

from camelid.errors import CamelidError
from camelid.log import get_logger
from camelid.runs import CHECKPOINT_PREFIX

log = get_logger("ppo")

CHECKPOINT_MARKER = "state.json"  # written last: a checkpoint folder holding it is complete
OPTIMIZER_FILES = ("optimizer_policy.pt", "optimizer_value.pt")


def save_checkpoint(acc, run_dir: Path, iteration: int, *, policy, value, optimizers: tuple, state: dict) -> Path:
    """Write checkpoint-<iteration>/ (``policy``/``value`` unwrapped, ``value`` a ValueModel or None), drop older ones.

    ``optimizers``: (policy's, value's); the value's is None without a value model.
    """
    final = run_dir / f"{CHECKPOINT_PREFIX}{iteration}"
    tmp = run_dir / f".tmp-{CHECKPOINT_PREFIX}{iteration}"
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        policy.save_pretrained(tmp / "policy", safe_serialization=True)
        if value is not None:
            value.model.save_pretrained(tmp / "value", safe_serialization=True)
        for opt, name in zip(optimizers, OPTIMIZER_FILES):
            if opt is not None:
                torch.save(opt.state_dict(), tmp / name)
    acc.wait_for_everyone()
    _save_rng(tmp, acc.process_index)
    acc.wait_for_everyone()
    if acc.is_main_process:
        (tmp / CHECKPOINT_MARKER).write_text(json.dumps({**state, "world_size": acc.num_processes}, indent=1))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in run_dir.glob(f"{CHECKPOINT_PREFIX}*"):  # keep only the newest good one
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()
    return final


def load_checkpoint(acc, folder: Path, *, policy, value, optimizers: tuple) -> dict:
    """Restore weights, optimizers and this process's RNG from ``folder``; returns its state.json."""
    state = json.loads((folder / CHECKPOINT_MARKER).read_text())
    if state.get("world_size", 1) != acc.num_processes:
        raise CamelidError(f"{folder} was written by {state['world_size']} processes; resume with the same "
                           f"number (now {acc.num_processes})")
    load_weights(policy, folder / "policy")
    if value is not None:
        load_weights(value.model, folder / "value")
    for opt, name in zip(optimizers, OPTIMIZER_FILES):
        if opt is not None:
            opt.load_state_dict(torch.load(folder / name, map_location=acc.device, weights_only=True))
    _load_rng(folder, acc.process_index)
    return state


def _save_rng(folder: Path, rank: int) -> None:
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state()
    torch.save(rng, folder / f"rng_{rank}.pt")
    py_state = random.getstate()
    extra = {"python": [py_state[0], list(py_state[1]), py_state[2]]}
    with contextlib.suppress(ImportError):
        import numpy as np

        st = np.random.get_state()
        extra["numpy"] = [st[0], st[1].tolist(), int(st[2]), int(st[3]), float(st[4])]
    (folder / f"rng_{rank}.json").write_text(json.dumps(extra))


def _load_rng(folder: Path, rank: int) -> None:
    rng = torch.load(folder / f"rng_{rank}.pt", weights_only=True)
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])
    extra = json.loads((folder / f"rng_{rank}.json").read_text())
    random.setstate((extra["python"][0], tuple(extra["python"][1]), extra["python"][2]))
    if "numpy" in extra:
        import numpy as np

        s = extra["numpy"]
        np.random.set_state((s[0], np.array(s[1], dtype=np.uint32), s[2], s[3], s[4]))


def load_weights(model, folder: Path) -> None:
    """Load a save_pretrained folder into ``model`` (LoRA: the adapter and saved modules only)."""
    from safetensors.torch import load_file

    if (folder / "adapter_model.safetensors").is_file():
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(str(folder / "adapter_model.safetensors")))
        return
    state = {}
    for f in sorted(folder.glob("*.safetensors")):
        state.update(load_file(str(f)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    missing = [k for k in missing if k not in tied and not k.endswith("lm_head.weight")]
    if missing or unexpected:
        raise CamelidError(f"checkpoint {folder} does not match the model: missing {missing[:3]}, "
                           f"unexpected {unexpected[:3]}")


class EarlyStopping:
    """Keeps the policy with the best held-out combined reward in <run>/best/; says when to stop.

    With ``patience`` None it keeps nothing and never stops: every iteration runs and the last policy is published.
    """

    def __init__(self, patience: int | None, run_dir: Path):
        self.patience = patience
        self.folder = run_dir / "best"
        self.best_reward = -math.inf
        self.evals_since_best = 0
        self.best_dir: Path | None = None  # set once a best policy has been saved

    @property
    def best_policy(self) -> Path | None:
        """The saved best policy folder, if any."""
        return self.best_dir / "policy" if self.best_dir else None

    def observe(self, acc, policy, evaluation: dict) -> bool:
        """Record one held-out ``evaluation`` (an evals row); save ``policy`` if it is the best. True: stop."""
        if self.patience is None:
            return False
        reward = evaluation["reward/combined"]
        if reward > self.best_reward:
            self.best_reward, self.evals_since_best = reward, 0
            self.best_dir = self.folder
            if acc.is_main_process:
                tmp = self.folder.parent / ".tmp-best"
                shutil.rmtree(tmp, ignore_errors=True)
                policy.save_pretrained(tmp / "policy", safe_serialization=True)
                (tmp / "eval.json").write_text(json.dumps(evaluation))
                shutil.rmtree(self.best_dir, ignore_errors=True)
                os.replace(tmp, self.best_dir)
            acc.wait_for_everyone()
            return False
        self.evals_since_best += 1
        if self.evals_since_best >= self.patience:
            log.info("early stopping: no better held-out combined reward in %d evaluations (best %.3f)",
                     self.evals_since_best, self.best_reward)
            return True
        return False

    def state_dict(self) -> dict:
        return {"best_reward": self.best_reward if self.best_dir else None,
                "evals_since_best": self.evals_since_best}

    def load_state_dict(self, state: dict) -> None:
        self.evals_since_best = int(state["evals_since_best"])
        if state.get("best_reward") is not None:
            self.best_reward = float(state["best_reward"])
            self.best_dir = self.folder
