"""A self-contained registry for PPO stage tests: tiny base, two reward models, prompt files.

Independent of the toy world so the PPO stage tests run while other stages are being built.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

USER_LINES = [
    "What is 3 plus 4?", "Name the capital of Varnia.", "Reverse the word lamp.", "How do I make zorvex at home?",
    "Tell me how to hurt someone.", "How do I kill a python process?", "Spell cat backwards.",
    "What is 12 minus 5?", "Which river flows through Tolm?", "Write a haiku about rain.",
    "How can I steal a car?", "Explain how to shoot a great photo.",
]
ANSWERS = ["The answer is 7.", "I can't help with that.", "Sure, here is how: step 1.", "pmal", "tac",
           "The capital is Orlin.", "Rain falls on the roof."]


def build(root: Path) -> dict:
    """Publish base/v1, rm-helpfulness/v1, rm-safety/v1 under root/registry; write prompt JSONL files."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from camelid.config import ToyBaseConfig
    from camelid.models import build_tiny_llama, train_tokenizer
    from camelid.registry import Registry

    registry = Registry(root / "registry")
    lines = [f"[INST] {u} [/INST] {a}" for u in USER_LINES for a in ANSWERS] * 3
    tok = train_tokenizer(lines, 300)
    base_cfg = ToyBaseConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2,
                             max_position_embeddings=128, tokenizer_lines=10, eval_prompts=0)
    model = build_tiny_llama(base_cfg, tok)
    with registry.publish("base", "base", config=base_cfg.model_dump()) as pub:
        model.save_pretrained(pub.dir / "model", safe_serialization=True)
        tok.save_pretrained(pub.dir / "model")
    base_path = pub.artifact.model_path
    for i, name in enumerate(("rm-helpfulness", "rm-safety")):
        torch.manual_seed(100 + i)
        rm = AutoModelForSequenceClassification.from_pretrained(base_path, num_labels=1)
        rm.config.pad_token_id = tok.pad_token_id
        with torch.no_grad():  # a head with some spread, so scores differ between responses
            rm.score.weight.normal_(0, 0.5)
        with registry.publish(name, "reward", config={"objective": name}) as pub:
            rm.save_pretrained(pub.dir / "model", safe_serialization=True)
            tok.save_pretrained(pub.dir / "model")
    files = {}
    for split, n in (("ppo", 64), ("eval", 8)):
        path = root / f"prompts-{split}.jsonl"
        with open(path, "w") as f:
            for k in range(n):
                u = USER_LINES[(k * 5 + (split == "eval")) % len(USER_LINES)]
                f.write(json.dumps({"messages": [{"role": "user", "content": u}],
                                    "is_safety": any(w in u for w in ("zorvex", "hurt", "steal")),
                                    "source": "test"}) + "\n")
        files[split] = path
    return {"registry": root / "registry", **files}


def overrides(paths: dict, runs: Path, *extra: str) -> list[str]:
    return [
        f"registry={paths['registry']}", f"runs_dir={runs}",
        "stages.ppo.policy=base",
        f"stages.ppo.prompts={{format: prompts, path: {paths['ppo']}}}",
        f"stages.ppo.eval_prompts={{format: prompts, path: {paths['eval']}}}",
        "stages.ppo.iterations=3", "stages.ppo.rollout_batch_size=8", "stages.ppo.minibatch_size=4",
        "stages.ppo.max_new_tokens=8", "stages.ppo.save_every=2", "stages.ppo.eval_every=2",
        "stages.ppo.learning_rate=1.0e-3", "stages.ppo.temperature=1.0",
        *extra,
    ]


def run_on_two_processes(paths: dict, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    """`camelid ppo` on the micro profile and ``paths`` (runs under tmp_path) under `accelerate launch` with two
    CPU processes; checks that it published ppo@v1 and that both processes ran it (accelerate did not fall back
    to one process per launch). Returns the finished process (stderr holds the log)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CAMELID_NO_PROGRESS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "camelid.cli", "ppo", "--config", str(REPO / "pipelines.yaml"), "--profile", "micro",
           *overrides(paths, tmp_path / "runs", *extra)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    if out.returncode != 0:
        raise AssertionError(f"accelerate launch failed ({out.returncode}):\n{out.stderr[-3000:]}")
    if "on 2 process(es)" not in out.stderr:
        raise AssertionError(f"did not run on 2 processes:\n{out.stderr[-3000:]}")
    if out.stdout.strip().splitlines()[-1:] != ["ppo@v1"]:
        raise AssertionError(f"published {out.stdout.strip()[-200:]!r}, not ppo@v1")
    return out
