"""PPO throughput: `camelid ppo` (two reward models) vs trl 1.12's PPOTrainer (one) vs trl's RLOOTrainer (issue #10).

    python bench/ppo.py                      # tiny profile, 1 + 12 iterations per run, 3 rounds (~5 min here)
    python bench/ppo.py --profile micro --iterations 6 --repeats 1

The three variants train the same policy (a short camelid SFT of the toy base, built with both reward
models in a scratch registry) on the same toy prompts, with the profile's max_new_tokens, temperature
1, rollout batch (episodes per iteration), minibatch size, one PPO epoch, fp32 on CPU:

  camelid ppo      its own recipe and trainer; Llama 2's combined reward from BOTH reward models,
                   value model initialised from the helpfulness RM, reference = the SFT policy.
  TRL 1.12 PPO     trl.experimental.ppo.PPOTrainer (removed in trl 1.13) with ONE reward model (the
                   helpfulness RM), value model from that RM, reference = the SFT policy. trl 1.12.0
                   cannot share the venv with trl 1.16, but runs unmodified on its transformers 5.23,
                   accelerate and datasets: it is installed alone (pip --no-deps --target) into
                   bench/.trl-1.12 on first use, and its worker gets that folder first on PYTHONPATH.
  TRL RLOO         trl's RLOOTrainer (this venv's trl) with a reward callable that scores with BOTH
                   reward models and combines them by camelid's rule; prompts x num_generations = the
                   rollout batch; no value model (RLOO's baseline is the other samples of the prompt).

Each run is its own process; the variants alternate (A B C A B C). One iteration = one rollout batch of
episodes + its updates; the first is an untimed warm-up. Reported: episodes/s and generated tokens/s of
the timed iterations, the time split per iteration (generation / reward models / reference+value
forwards / training = forwards with grad, backward, optimizer steps / other = everything else), peak
memory, model FLOP/s against this machine's measured matmul FLOP/s (MFU), and camelid/TRL-PPO,
camelid/RLOO per round.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import inspect
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import common
import torch

SCRIPT = Path(__file__).resolve()
TRL_PPO_VERSION = "1.12.0"  # the last trl with PPOTrainer (trl.experimental.ppo); 1.13 removed it
TRL_PPO_DIR = common.BENCH / ".trl-1.12"  # git-ignored; `pip install --no-deps --target` puts it here
WARMUP = 1  # untimed iterations at the start of every run
SMOL_SOURCE, SMOL_NAME = common.SMOL_SOURCE, common.SMOL_NAME
VARIANTS = {"camelid ppo": "camelid", "camelid, padded rows": "camelid-padded", "TRL 1.12 PPO": "trl-ppo",
            "TRL RLOO": "rloo"}
DEFAULT_VARIANTS = ("camelid", "trl-ppo", "rloo")  # the padded-rows run (before #18) only with --only camelid-padded
PHASES = ("generation", "rewards", "ref_value", "training", "rest")  # rest = the loop's time outside the others


# ---- the second trl ------------------------------------------------------------------------------------

def ensure_trl_ppo() -> Path:
    """bench/.trl-1.12: trl 1.12.0 alone (no deps: it runs on this venv's transformers/accelerate/datasets)."""
    if (TRL_PPO_DIR / f"trl-{TRL_PPO_VERSION}.dist-info").is_dir():
        return TRL_PPO_DIR
    print(f"trl {TRL_PPO_VERSION} (the last release with PPOTrainer) is not installed for the bench yet: installing "
          f"it into {TRL_PPO_DIR.relative_to(common.REPO)} (pip --no-deps --target; this venv keeps its own trl)",
          flush=True)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--upgrade", "--target", str(TRL_PPO_DIR),
           f"trl=={TRL_PPO_VERSION}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not (TRL_PPO_DIR / f"trl-{TRL_PPO_VERSION}.dist-info").is_dir():
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-3000:])
        raise SystemExit(f"could not install trl=={TRL_PPO_VERSION} into {TRL_PPO_DIR}; run `{' '.join(cmd)}` by "
                         "hand (it needs a package index), or leave that variant out: --only camelid --only rloo")
    return TRL_PPO_DIR


# ---- the scratch pipeline ------------------------------------------------------------------------------

def overrides(a: argparse.Namespace) -> list[str]:
    """The profile, shortened: a short SFT and short RMs without evaluation; PPO with exactly the bench's prompts."""
    out = [f"registry={a.registry}", f"runs_dir={a.runs}", "toy_base.eval_prompts=0",
           f"stages.sft.max_steps={a.sft_steps}", "stages.sft.eval_data=null", "stages.sft.eval_prompts=null",
           f"stages.sft.save_steps={a.sft_steps + 1}",
           f"stages.ppo.iterations={a.total_iterations}", f"stages.ppo.save_every={a.total_iterations}",
           "stages.ppo.eval_prompts=null", "stages.ppo.early_stopping_patience=null",
           "stages.ppo.value_warmup=0"]  # every timed iteration a full PPO one, as TRL's are
    for obj in ("helpfulness", "safety"):
        out += [f"stages.reward.{obj}.max_steps={a.rm_steps}", f"stages.reward.{obj}.eval_data=null",
                f"stages.reward.{obj}.save_steps={a.rm_steps + 1}", f"stages.reward.{obj}.logging_steps={a.rm_steps}"]
        if a.model == "smol":  # RMs straight from the imported model (no SFT: SmolLM2-Instruct is the policy)
            out += [f"stages.reward.{obj}.init={SMOL_NAME}"]
    if a.model == "smol":
        out += [f"stages.ppo.policy={SMOL_NAME}"]
    return out


def load_cfg(a: argparse.Namespace, extra: list[str] = ()):
    from camelid.config import load_config

    return load_config(common.REPO / "pipelines.yaml", a.profile, [*overrides(a), *extra])


def build_models(a: argparse.Namespace) -> dict:
    """The scratch registry: `camelid init` + a short `camelid sft` (toy) or `camelid import` of SmolLM2 from the
    cached wheel (smol, used as the policy as it is); then both `camelid reward` stages, short."""
    from camelid.registry import Registry
    from camelid.stage import run_job

    cfg = load_cfg(a)
    if a.model != "smol":  # smol runs no SFT here (and its stages.sft.data is a mixture, not one spec)
        sc = cfg.stages.sft
        # only as many examples as the short run reads, so data preparation stays quick
        cfg = load_cfg(a, [f"stages.sft.data.n={a.sft_steps * sc.batch_size * sc.grad_accum}"])
    registry = Registry(a.registry)
    times = {}
    t0 = time.perf_counter()
    if a.model == "smol":
        common.import_smol(registry)
        times["import"] = time.perf_counter() - t0
    else:
        from camelid.init_cmd import run_init

        run_init(cfg, registry)
        times["init"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_job(cfg, registry, "sft")
        times["sft"] = time.perf_counter() - t0
    for obj in ("helpfulness", "safety"):
        t0 = time.perf_counter()
        run_job(cfg, registry, f"reward-{obj}")
        times[f"rm-{obj}"] = time.perf_counter() - t0
    return times


# ---- instrumentation in the workers ------------------------------------------------------------------

def _n_params(module) -> int:
    from camelid.models import count_parameters

    return count_parameters(module)


def _now() -> float:
    """perf_counter after the GPU's queued work (if any) is done, so a phase's time is its own."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


class Probe:
    """Times phases and counts model FLOPs by wrapping the methods of the models a trainer holds.

    Python looks a method up on the instance first, and nn.Module.__call__ calls ``self.forward``, so
    ``obj.forward = wrapper`` (or ``.generate`` / ``.score``) intercepts every call the trainer makes
    without touching the trainer's code; backward passes are timed through ``torch.autograd.backward``
    (which Tensor.backward calls) and optimizer steps through torch's global optimizer step hooks. A
    phase counts only calls made outside every other phase: the policy's forwards inside generate() are
    generation time, a reward model's forward inside a timed reward function is reward time.

    FLOPs: 2N per non-padding token (attention mask) of a forward without gradients, 6N per token of a
    forward with gradients (forward + backward; every such forward here is backpropagated), N = all
    parameters of the wrapped model. Generation is counted once, at its end: 2 N_policy x (real prompt
    tokens + generated tokens up to and including the first EOS); its inner forwards are not counted again.
    """

    def __init__(self, eos_id: int, episodes_per_iteration: int):
        self.eos_id = eos_id
        self.episodes = episodes_per_iteration
        self.seconds: dict[str, float] = defaultdict(float)
        self.flops: dict[str, float] = defaultdict(float)
        self.counts: dict[str, float] = defaultdict(float)  # generated tokens, truncated responses, ...
        self._active: set[str] = set()
        self._generating = False
        self.marks: list[tuple[float, dict, dict, dict]] = []
        self.packed: dict[int, torch.Tensor] = {}  # id(input_ids) -> real-token mask of camelid's packed rows

    def packing(self, module, name: str = "pack_rows") -> None:
        """Remember the real tokens of every `Rows` that ``module.pack_rows`` builds (packed rows carry no mask)."""
        inner = getattr(module, name)

        def pack(*args, **kwargs):
            rows = inner(*args, **kwargs)
            self.packed = {k: v for k, v in self.packed.items() if k != id(rows.input_ids)}
            self.packed[id(rows.input_ids)] = rows.real
            if len(self.packed) > 64:  # only the last few are alive
                self.packed.pop(next(iter(self.packed)))
            return rows

        setattr(module, name, pack)

    # -- wrappers
    def phase(self, obj, name: str, phase: str, *, when: str | None = None) -> None:
        """Time ``obj.name(...)`` as ``phase``; when="grad" / "no_grad": only calls with / without autograd."""
        setattr(obj, name, self.timed(getattr(obj, name), phase, when=when))

    def timed(self, fn, phase: str, *, when: str | None = None):
        """``fn`` wrapped so that its calls outside every other phase add their wall time to ``phase``."""

        @functools.wraps(fn)  # keeps the signature (count_forward reads it) and __name__ (TRL names reward funcs)
        def timed(*args, **kwargs):
            grad = torch.is_grad_enabled()
            if self._active or (when == "grad" and not grad) or (when == "no_grad" and grad):
                return fn(*args, **kwargs)
            self._active.add(phase)
            t0 = _now()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[phase] += _now() - t0
                self._active.discard(phase)

        return timed

    def training_steps(self) -> None:
        """Count every backward pass and optimizer step of this process as "training" time."""
        torch.autograd.backward = self.timed(torch.autograd.backward, "training")
        started: list[float] = []

        def pre(optimizer, args, kwargs):
            started.append(_now() if not self._active else -1.0)

        def post(optimizer, args, kwargs):
            t0 = started.pop()
            if t0 >= 0:
                self.seconds["training"] += _now() - t0

        from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

        register_optimizer_step_pre_hook(pre)
        register_optimizer_step_post_hook(post)

    def count_forward(self, module, role: str, params: int | None = None) -> None:
        """Add 2N (no grad) or 6N (grad) x non-padding tokens of every forward of ``module`` to ``role``."""
        n = params if params is not None else _n_params(module)
        inner = module.forward
        signature = inspect.signature(inner)

        @functools.wraps(inner)
        def counted(*args, **kwargs):
            if not self._generating:
                given = signature.bind_partial(*args, **kwargs).arguments  # camelid's value model takes positionals
                mask, ids = given.get("attention_mask"), given.get("input_ids")
                if mask is None and ids is not None and id(ids) in self.packed:  # camelid's packed rows
                    mask = self.packed[id(ids)]
                tokens = int(mask.sum()) if mask is not None else (ids.numel() if ids is not None else 0)
                slots = mask.numel() if mask is not None else tokens
                for key in ("forward", role):
                    self.counts[f"{key}_tokens"] += tokens
                    self.counts[f"{key}_slots"] += slots
                grad = torch.is_grad_enabled()
                self.flops[f"{role}/{'train' if grad else 'forward'}"] += (6 if grad else 2) * n * tokens
            return inner(*args, **kwargs)

        module.forward = counted

    def generation(self, model, params: int | None = None) -> None:
        """Time ``model.generate`` and count its tokens and FLOPs (see the class docstring)."""
        from camelid.ppo.rollout import response_mask

        n = params if params is not None else _n_params(model)
        inner = model.generate

        @functools.wraps(inner)
        def generate(*args, **kwargs):
            self._generating = True
            self._active.add("generation")
            t0 = _now()
            try:
                out = inner(*args, **kwargs)
            finally:
                self.seconds["generation"] += _now() - t0
                self._generating = False
                self._active.discard("generation")
            seq = out if torch.is_tensor(out) else out["sequences"]
            ids, mask = kwargs.get("input_ids", args[0] if args else None), kwargs.get("attention_mask")
            responses = seq[:, ids.shape[1]:]
            generated = int(response_mask(responses, self.eos_id).sum())
            prompt = int(mask.sum()) if mask is not None else ids.numel()
            self.counts["generated_tokens"] += generated
            self.counts["responses"] += responses.shape[0]
            self.counts["truncated"] += int((~(responses == self.eos_id).any(-1)).sum())
            self.counts["response_width"] += responses.shape[1] * responses.shape[0]
            self.flops["policy/generation"] += 2 * n * (prompt + generated)
            return out

        model.generate = generate

    # -- iteration boundaries
    def mark(self) -> None:
        """Call at the end of every iteration."""
        self.marks.append((_now(), dict(self.seconds), dict(self.flops), dict(self.counts)))

    def summary(self, warmup: int = WARMUP) -> dict:
        if len(self.marks) <= warmup:
            raise RuntimeError(f"only {len(self.marks)} iterations ran; the bench needs more than {warmup}")
        (t0, s0, f0, c0), (t1, s1, f1, c1) = self.marks[warmup - 1], self.marks[-1]

        def diff(a: dict, b: dict) -> dict:
            return {k: b.get(k, 0.0) - a.get(k, 0.0) for k in set(a) | set(b)}

        seconds, phases, flops, counts = t1 - t0, diff(s0, s1), diff(f0, f1), diff(c0, c1)
        iterations = len(self.marks) - warmup
        episodes = iterations * self.episodes
        split = {k: phases.get(k, 0.0) for k in PHASES[:-1]}
        split["rest"] = seconds - sum(split.values())
        return {
            "iterations": len(self.marks), "timed_iterations": iterations, "seconds": seconds,
            "episodes_per_s": episodes / seconds, "gen_tokens_per_s": counts["generated_tokens"] / seconds,
            "mean_response_tokens": counts["generated_tokens"] / max(counts["responses"], 1),
            "truncated_share": counts["truncated"] / max(counts["responses"], 1),
            "mean_response_width": counts["response_width"] / max(counts["responses"], 1),
            "forward_padding": 1 - counts["forward_tokens"] / max(counts["forward_slots"], 1),
            "padding_by_role": {k[:-len("_slots")]: 1 - counts[k[:-len("_slots")] + "_tokens"] / v
                                for k, v in counts.items() if k.endswith("_slots") and v},
            "time_split": {k: v / iterations for k, v in split.items()},  # seconds per iteration
            "flops": flops, "model_flops_per_s": sum(flops.values()) / seconds,
        }


# ---- workers (one process per timed run) ------------------------------------------------------------

def worker_camelid_padded(a: argparse.Namespace) -> dict:
    """camelid before #18: reference, value and training forwards on the left-padded batch, full logits."""
    from camelid.ppo.experience_maker import ExperienceMaker
    from camelid.ppo.update import PPOUpdate

    ExperienceMaker.compact = PPOUpdate.compact = False
    return worker_camelid(a)


def worker_camelid(a: argparse.Namespace, overrides: list[str] = ()) -> dict:
    """camelid's own recipe setup() and trainer, as `camelid ppo` runs them (without eval and publishing);
    ``overrides``: bench/grpo.py's critic-free estimators (no value model)."""
    from camelid.ppo import experience_maker, recipe, update
    from camelid.registry import Registry
    from camelid.stage import context_for
    from camelid.stages import job_for

    cfg = load_cfg(a, overrides)
    probe: Probe | None = None
    ctx = context_for(cfg, Registry(a.registry), job_for(cfg, "ppo"))
    trainer, *_ = recipe.setup(ctx, callbacks=[lambda trainer, metrics: probe.mark()])
    pc = cfg.stages.ppo
    probe = Probe(trainer.eos_id, pc.rollout_batch_size)
    policy, value = trainer.unwrapped_policy, trainer.unwrapped_value
    assert (value is None) == pc.critic_free, f"advantage {pc.advantage}: value model {value is not None}"
    probe.packing(experience_maker)
    probe.packing(update)
    probe.generation(policy)
    for rm in (trainer.rm_h, trainer.rm_s):  # score = encode (render + tokenize) + score_ids (forward)
        for method in ("score", "encode", "score_ids"):
            probe.phase(rm, method, "rewards")
    probe.phase(trainer.reference, "forward", "ref_value")
    probe.phase(policy, "forward", "training", when="grad")
    if value is not None:
        probe.phase(value, "forward", "ref_value", when="no_grad")
        probe.phase(value, "forward", "training", when="grad")
    probe.training_steps()
    probe.count_forward(policy, "policy")
    probe.count_forward(trainer.reference, "reference")
    if value is not None:
        probe.count_forward(value, "value")
    probe.count_forward(trainer.rm_h.model, "rm_helpfulness")
    probe.count_forward(trainer.rm_s.model, "rm_safety")
    trainer.train()
    last = trainer.history[-1]
    return {"probe": probe, "policy_params": _n_params(policy),
            "reward_last": last["reward/combined"], "kl_last": last["kl"],
            "own_split": {k: statistics.mean(h[k] for h in trainer.history[WARMUP:])
                          for k in ("time/generation", "time/scoring", "time/training")}}


def _prompt_records(cfg) -> list:
    from camelid.data.load import load_records

    return load_records(cfg.stages.ppo.prompts, "prompts").records


def _models(cfg):
    from camelid.registry import Registry

    registry = Registry(cfg.registry)
    pc = cfg.stages.ppo
    return {role: registry.resolve(getattr(pc, role)) for role in ("policy", "reward_helpfulness", "reward_safety",
                                                                     "value_init")}


def worker_trl_ppo(a: argparse.Namespace) -> dict:
    """trl 1.12's PPOTrainer, configured like camelid's PPO stage, with the helpfulness RM only."""
    import trl
    from datasets import Dataset
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        TrainerCallback,
    )
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    from camelid.ppo.rollout import encode_prompts

    if trl.__version__ != TRL_PPO_VERSION:
        raise RuntimeError(f"the TRL PPO worker needs trl {TRL_PPO_VERSION} first on PYTHONPATH, got {trl.__version__}")
    cfg = load_cfg(a)
    pc = cfg.stages.ppo
    models = _models(cfg)
    torch.manual_seed(pc.seed)
    tokenizer = AutoTokenizer.from_pretrained(models["policy"].model_path)
    tokenizer.padding_side = "left"  # the collator pads queries; generation needs them on the left
    records = _prompt_records(cfg)
    # the same prompt token ids camelid's rollout encodes
    ids = encode_prompts(tokenizer, [r.messages for r in records], pc.max_prompt_length)
    train = Dataset.from_dict({"input_ids": ids})
    fp32 = {"dtype": torch.float32}
    policy = AutoModelForCausalLM.from_pretrained(models["policy"].model_path, **fp32)
    reference = AutoModelForCausalLM.from_pretrained(models["policy"].model_path, **fp32)
    value = AutoModelForSequenceClassification.from_pretrained(models["value_init"].model_path, num_labels=1, **fp32)
    reward = AutoModelForSequenceClassification.from_pretrained(models["reward_helpfulness"].model_path,
                                                                num_labels=1, **fp32)
    for m in (policy, reference, value, reward):
        m.config.pad_token_id = tokenizer.pad_token_id
    device = common.bench_device()
    args = PPOConfig(
        output_dir=str(Path(a.runs) / "trl-ppo"), report_to="none", save_strategy="no", logging_steps=1,
        disable_tqdm=True, seed=pc.seed, bf16=common.bench_dtype(device) == torch.bfloat16,
        use_cpu=device.type == "cpu", gradient_checkpointing=False,
        dataloader_num_workers=0,
        total_episodes=a.total_iterations * pc.rollout_batch_size,
        # one rollout batch per update; num_mini_batches minibatches of minibatch_size, each one optimizer step
        per_device_train_batch_size=pc.rollout_batch_size, gradient_accumulation_steps=1,
        num_mini_batches=pc.rollout_batch_size // pc.minibatch_size, num_ppo_epochs=pc.ppo_epochs,
        local_rollout_forward_batch_size=pc.rollout_batch_size,  # generate and score the batch at once, as camelid
        response_length=pc.max_new_tokens, temperature=pc.temperature, stop_token="eos", missing_eos_penalty=None,
        kl_coef=pc.kl_coef, kl_estimator=pc.kl_estimator, cliprange=pc.clip_range, cliprange_value=pc.value_clip,
        vf_coef=pc.vf_coef, gamma=pc.gamma, lam=pc.lam, whiten_rewards=False, num_sample_generations=0,
        learning_rate=pc.learning_rate, lr_scheduler_type="constant", weight_decay=pc.weight_decay,
        adam_beta1=pc.adam_betas[0], adam_beta2=pc.adam_betas[1], adam_epsilon=pc.adam_eps,
    )
    probe = Probe(tokenizer.eos_token_id, pc.rollout_batch_size)

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # once per PPO update (= iteration)
            probe.mark()

    trainer = PPOTrainer(args=args, processing_class=tokenizer, model=policy, ref_model=reference,
                         reward_model=reward, value_model=value, train_dataset=train,
                         eval_dataset=train.select(range(min(8, len(train)))), callbacks=[Clock()])
    # TRL's get_reward() runs the backbone (`model.model`) and the head itself, so time the backbones
    probe.generation(policy)
    probe.phase(reward.model, "forward", "rewards")
    probe.phase(reference, "forward", "ref_value")
    probe.phase(value.model, "forward", "ref_value", when="no_grad")
    probe.phase(policy, "forward", "training", when="grad")
    probe.phase(value.model, "forward", "training", when="grad")  # PolicyAndValueWrapper calls the backbone
    probe.training_steps()
    probe.count_forward(policy, "policy")
    probe.count_forward(reference, "reference")
    probe.count_forward(value.model, "value", _n_params(value))
    probe.count_forward(reward.model, "rm_helpfulness", _n_params(reward))
    trainer.train()
    scores = [h["objective/scores"] for h in trainer.state.log_history if "objective/scores" in h]
    kls = [h["objective/kl"] for h in trainer.state.log_history if "objective/kl" in h]
    return {"probe": probe, "policy_params": _n_params(policy), "reward_last": scores[-1] if scores else None,
            "kl_last": kls[-1] if kls else None}


def worker_trl_critic_free(a: argparse.Namespace, kind: str) -> dict:
    """TRL's RLOOTrainer (kind "rloo") or GRPOTrainer ("grpo"), this venv's trl, with a reward callable: camelid's
    combined reward from both RMs (bench/grpo.py runs both kinds, this file's TRL RLOO variant the first)."""
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    from camelid.reward.combined import load_combined_scorer

    config_cls, trainer_cls = {"grpo": (GRPOConfig, GRPOTrainer), "rloo": (RLOOConfig, RLOOTrainer)}[kind]
    cfg = load_cfg(a)
    pc = cfg.stages.ppo
    models = _models(cfg)
    if pc.rollout_batch_size % a.num_generations or pc.minibatch_size % a.num_generations:
        raise SystemExit(f"--num-generations {a.num_generations} must divide rollout_batch_size "
                         f"{pc.rollout_batch_size} and minibatch_size {pc.minibatch_size}")
    torch.manual_seed(pc.seed)
    tokenizer = AutoTokenizer.from_pretrained(models["policy"].model_path)
    tokenizer.padding_side = "left"
    records = _prompt_records(cfg)
    train = Dataset.from_dict({"prompt": [r.messages for r in records], "is_safety": [bool(r.is_safety) for r in records]})
    device = common.bench_device()  # the RMs where camelid's PPO puts them: fp32 on CPU, bf16 on a GPU
    rewards = load_combined_scorer(models["reward_helpfulness"], models["reward_safety"], None,
                                   threshold=cfg.shared.safety_threshold, device=device)
    probe = Probe(tokenizer.eos_token_id, pc.rollout_batch_size)

    def combined(prompts, completions, completion_ids, is_safety, **_) -> list[float]:
        """Llama 2's rule on both RMs' calibrated scores, exactly as camelid's trainer scores (decoded, stripped)."""
        texts = [(c[-1]["content"] if isinstance(c, list) else c).strip() for c in completions]
        return rewards.score(prompts, texts, is_safety).combined.tolist()

    args = config_cls(
        output_dir=str(Path(a.runs) / f"trl-{kind}"), report_to="none", save_strategy="no", logging_steps=1,
        disable_tqdm=True, seed=pc.seed, bf16=common.bench_dtype(device) == torch.bfloat16,
        use_cpu=device.type == "cpu", gradient_checkpointing=False, dataloader_num_workers=0, log_completions=False,
        model_init_kwargs={"dtype": "float32"},
        # per iteration: rollout_batch_size completions (prompts x num_generations), then
        # rollout/minibatch optimizer steps of minibatch_size completions each, ppo_epochs passes
        per_device_train_batch_size=pc.minibatch_size, gradient_accumulation_steps=1,
        steps_per_generation=pc.rollout_batch_size // pc.minibatch_size, num_iterations=pc.ppo_epochs,
        num_generations=a.num_generations,
        max_steps=a.total_iterations * pc.rollout_batch_size // pc.minibatch_size * pc.ppo_epochs,
        max_completion_length=pc.max_new_tokens, temperature=pc.temperature, top_p=pc.top_p, top_k=0,
        beta=pc.kl_coef, epsilon=pc.clip_range,
        learning_rate=pc.learning_rate, lr_scheduler_type="constant", weight_decay=pc.weight_decay,
        adam_beta1=pc.adam_betas[0], adam_beta2=pc.adam_betas[1], adam_epsilon=pc.adam_eps,
        max_grad_norm=pc.max_grad_norm,
    )
    steps_per_iteration = args.steps_per_generation * args.num_iterations

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # an iteration = one generation + its steps
            if state.global_step % steps_per_iteration == 0:
                probe.mark()

    trainer = trainer_cls(model=models["policy"].model_path, reward_funcs=[combined], args=args, train_dataset=train,
                          processing_class=tokenizer, callbacks=[Clock()])
    policy, reference = trainer.model, trainer.ref_model
    probe.generation(policy)
    trainer.reward_funcs[0] = probe.timed(trainer.reward_funcs[0], "rewards")
    if reference is not None:  # GRPO with beta 0 keeps no reference
        probe.phase(reference, "forward", "ref_value")
        probe.count_forward(reference, "reference")
    probe.phase(policy, "forward", "ref_value", when="no_grad")  # the old-logprob forward (outside generate)
    probe.phase(policy, "forward", "training", when="grad")
    probe.training_steps()
    probe.count_forward(policy, "policy")
    probe.count_forward(rewards.helpfulness.model, "rm_helpfulness")
    probe.count_forward(rewards.safety.model, "rm_safety")
    trainer.train()
    rewards_logged = [h["reward"] for h in trainer.state.log_history if "reward" in h]
    kls = [h["kl"] for h in trainer.state.log_history if "kl" in h]
    return {"probe": probe, "policy_params": _n_params(policy),
            "reward_last": rewards_logged[-1] if rewards_logged else None, "kl_last": kls[-1] if kls else None}


WORKERS = {"camelid": worker_camelid, "camelid-padded": worker_camelid_padded, "trl-ppo": worker_trl_ppo,
           "rloo": lambda a: worker_trl_critic_free(a, "rloo")}


def run_worker(a: argparse.Namespace, workers: dict | None = None) -> None:
    """A worker process: run its variant (``workers``: bench/grpo.py's, else this file's) and emit the numbers."""
    extra = (workers or WORKERS)[a.worker](a)
    probe: Probe = extra.pop("probe")
    res = probe.summary()
    flops = common.matmul_flops()  # right after training: the machine as this run saw it
    res.update(extra, peak_mb=common.peak_rss_mb(), machine_flops=flops,
               mfu=res["model_flops_per_s"] / flops)
    common.emit(res)


# ---- the side-by-side run ---------------------------------------------------------------------------

def describe(res: dict) -> str:
    s = res["time_split"]
    return (f"{res['episodes_per_s']:>6.1f} episodes/s {res['gen_tokens_per_s']:>6.0f} gen tok/s  "
            f"len {res['mean_response_tokens']:.1f}  s/iteration: gen {s['generation']:.2f} rm {s['rewards']:.2f} "
            f"ref+value {s['ref_value']:.2f} train {s['training']:.2f} other {s['rest']:.2f}  "
            f"peak {res['peak_mb']:.0f} MB  padding " + " ".join(f"{k} {v:.0%}" for k, v in res["padding_by_role"].items()))


def report(results: dict[str, list[dict]], cfg) -> list[dict]:
    rows = []
    base = results.get("camelid ppo")
    for name, runs in results.items():
        split = {k: statistics.median(r["time_split"][k] for r in runs) for k in runs[0]["time_split"]}
        total = sum(split.values())
        row = {
            "variant": name,
            "reward models": {"TRL 1.12 PPO": "1 (helpfulness)", "TRL RLOO": "2 (combined, callable)"}.get(
                name, "2 (combined)"),
            "episodes/s": common.spread([r["episodes_per_s"] for r in runs]),
            "camelid / this": ("-" if base is None else "1" if runs is base else
                               common.spread([b["episodes_per_s"] / r["episodes_per_s"] for b, r in zip(base, runs)])),
            "gen tok/s": common.spread([r["gen_tokens_per_s"] for r in runs]),
            "mean len": f"{statistics.median(r['mean_response_tokens'] for r in runs):.1f}",
            "s/iteration: gen / rm / ref+val / train / other": " / ".join(f"{split[k]:.2f}" for k in PHASES),
            "train share": f"{split['training'] / total:.0%}",
            "padding (fwd)": f"{statistics.median(r['forward_padding'] for r in runs):.1%}",
            "peak MB": f"{statistics.median(r['peak_mb'] for r in runs):.0f}",
            "machine GFLOP/s": common.spread([r["machine_flops"] / 1e9 for r in runs]),
            "model GFLOP/s": common.spread([r["model_flops_per_s"] / 1e9 for r in runs]),
            "MFU": f"{statistics.median(r['mfu'] for r in runs):.2%}",
        }
        rows.append(row)
    print()
    print(common.markdown_table(rows))
    return rows


def parse_args(argv: list[str] | None, doc: str, variants: dict, workers: dict,
               generations_help: str) -> argparse.Namespace:
    """The side-by-side benches' command line (this file's and bench/grpo.py's), worker-only arguments included."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_model_arg(p)  # toy: SFT'd briefly; smol: the policy as imported, RMs trained briefly from it
    p.add_argument("--iterations", type=int, default=12, help="timed iterations per run (after 1 warm-up)")
    p.add_argument("--repeats", type=int, default=3, help="rounds of alternating runs")
    p.add_argument("--sft-steps", type=int, default=150, help="steps of the short SFT that makes the policy")
    p.add_argument("--rm-steps", type=int, default=30, help="steps of each short reward-model run")
    p.add_argument("--num-generations", type=int, default=4, help=generations_help)
    p.add_argument("--only", action="append", choices=sorted(variants.values()), help="run only these variants")
    p.add_argument("--no-append", dest="append", action="store_false", help="do not append to bench/RESULTS.md")
    # worker-only arguments
    p.add_argument("--worker", choices=sorted(workers), help=argparse.SUPPRESS)
    for name in ("--registry", "--runs"):
        p.add_argument(name, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    common.default_profile(a)
    a.total_iterations = a.iterations + WARMUP
    return a


@contextlib.contextmanager
def scratch_pipeline(a: argparse.Namespace, wanted: dict[str, str], prefix: str):
    """A temporary registry holding the benches' policy and both RMs (`build_models`); yields each wanted
    variant's worker command line (variant name -> argv)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        a.registry, a.runs = str(Path(tmp) / "registry"), str(Path(tmp) / "runs")
        t0 = time.perf_counter()
        os.environ.setdefault("CAMELID_NO_PROGRESS", "1")
        os.environ.setdefault("TQDM_DISABLE", "1")  # the stages' progress bars (their log lines stay)
        times = build_models(a)
        print(f"scratch pipeline in {time.perf_counter() - t0:.0f}s: "
              + ", ".join(f"{k} {v:.0f}s" for k, v in times.items()), flush=True)
        shared = ["--model", a.model, "--profile", a.profile, "--registry", a.registry, "--runs", a.runs, "--iterations",
                  str(a.iterations), "--sft-steps", str(a.sft_steps), "--rm-steps", str(a.rm_steps),
                  "--num-generations", str(a.num_generations)]
        yield {name: ["--worker", w, *shared] for name, w in wanted.items()}


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv, __doc__, VARIANTS, WORKERS, "RLOO completions per prompt")
    info = common.worker_or_machine(a, run_worker)
    if info is None:
        return 0

    flops = common.matmul_flops()
    print(f"measured fp32 matmul: {flops / 1e9:.1f} GFLOP/s (1024^2 products, {torch.get_num_threads()} thread(s))",
          flush=True)
    wanted = {name: w for name, w in VARIANTS.items() if w in (a.only or DEFAULT_VARIANTS)}
    envs = {}
    if "TRL 1.12 PPO" in wanted:
        path = ensure_trl_ppo()
        envs["TRL 1.12 PPO"] = {"PYTHONPATH": os.pathsep.join(filter(None, [str(path), os.environ.get("PYTHONPATH")]))}
    with scratch_pipeline(a, wanted, "camelid-bench-ppo-") as variants:
        cfg = load_cfg(a)
        pc = cfg.stages.ppo
        print(f"{a.profile} profile: rollout batch {pc.rollout_batch_size} episodes, minibatch {pc.minibatch_size}, "
              f"{pc.ppo_epochs} PPO epoch(s), max_new_tokens {pc.max_new_tokens}, temperature {pc.temperature}; "
              f"{WARMUP} + {a.iterations} iterations per run, {a.repeats} rounds of {len(variants)} runs", flush=True)
        results = common.alternate(variants, SCRIPT, a.repeats, envs=envs, describe=describe)

    rows = report(results, cfg)
    if a.append:
        notes = [
            f"profile {a.profile}; policy = " + ("SmolLM2-135M-Instruct as imported (`camelid import "
                                                 f"{SMOL_SOURCE}`, no SFT)" if a.model == "smol" else
                                                 f"camelid SFT of the toy base for {a.sft_steps} steps") +
            f", RMs {a.rm_steps} steps each from it (scratch registry); rollout batch {pc.rollout_batch_size} episodes per iteration, minibatch "
            f"{pc.minibatch_size} ({pc.rollout_batch_size // pc.minibatch_size} optimizer steps per iteration), "
            f"{pc.ppo_epochs} epoch, max_new_tokens {pc.max_new_tokens}, temperature {pc.temperature}, fp32, "
            f"{WARMUP} untimed + {a.iterations} timed iterations per run, {a.repeats} alternating rounds, one "
            "process per run",
            "camelid ppo: its recipe's setup() and PPOTrainer (combined reward of the helpfulness and safety RMs, "
            "value from the helpfulness RM). TRL 1.12 PPO: trl.experimental.ppo.PPOTrainer from "
            f"bench/.trl-1.12 (trl {TRL_PPO_VERSION}, --no-deps, on this venv's transformers), helpfulness RM only, "
            "value from it, no reward whitening, constant LR. TRL RLOO: this venv's RLOOTrainer, "
            f"{pc.rollout_batch_size // a.num_generations} prompts x {a.num_generations} generations per iteration, "
            "reward callable = camelid.reward.combined's scorer (both RMs, Llama 2's rule), beta = kl_coef",
            "episodes/s = completions trained on per second of the timed iterations; gen tok/s = generated tokens "
            "(up to and including EOS) per second of the same loop; mean len = generated tokens per episode. All "
            "start from the same policy, but each trainer moves it its own way (TRL 1.12 PPO clips no gradients "
            "and shares one optimizer between policy and value), so response lengths can drift apart: gen tok/s "
            "is the length-neutral comparison",
            "time split in seconds per iteration (median over runs), measured in the worker by wrapping the "
            "models' methods (see Probe): gen = policy.generate; rm = reward scoring (camelid and RLOO: "
            "camelid.reward.combined's scorer = chat rendering + tokenizing, once when the RMs' tokenizers agree, "
            "+ a forward per RM; TRL PPO: the RM backbone "
            "on the rollout's token ids); ref+val = reference forward + value forward without grad (RLOO: "
            "reference + its old-logprob policy forward, no value model); train = policy/value forwards with "
            "grad + backward + optimizer steps; other = the rest of the loop (decoding, advantages, grad "
            "clipping, logging; TRL PPO also runs gc.collect() twice per update)",
            "model FLOPs: 2N per non-padding token of every forward without grad (reference, value, reward models, "
            "RLOO's old-logprob pass), 6N per token of every forward with grad (policy and value training), and "
            "2N_policy x (real prompt + generated tokens) for generation; N = all parameters of that model "
            "(embeddings included), attention's T^2 ignored. MFU = model FLOP/s / measured fp32 matmul FLOP/s "
            "(1024^2, same process, same threads)",
            "camelid / this = camelid episodes/s over the variant's, per round (each round ran back to back): "
            "median [min-max]; peak = the worker process's own peak resident memory (VmHWM: imports, four or five "
            "models, optimizer states; not the parent's RSS, which ru_maxrss would include)",
        ]
        notes.append("padding (fwd) = padding slots / all token slots of every model forward outside generation "
                     "(reference, value, reward models, training; counted from the attention masks)")
        if "camelid, padded rows" in results:
            notes.append("camelid, padded rows = the same camelid code with ExperienceMaker.compact and "
                         "PPOUpdate.compact off: the left-padded forwards and full logits of before #18")
        path = common.append_results(f"PPO: camelid ppo vs TRL 1.12 PPOTrainer vs TRL RLOO ({a.profile})", rows,
                                     info=info, notes=notes)
        print(f"appended to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
