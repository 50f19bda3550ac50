"""Contract tests of the stages as a user sees them (#15): what the CLI publishes, that training moves every
weight, pinned losses and scores, and that a killed-and-resumed run equals the uninterrupted one.

Only stable entry points are used: `camelid.cli.main` in-process, `camelid.registry.Registry` (resolve, manifest,
path, model_path) and library-level patches of transformers' Trainer. Stage internals may move freely; if a
pinned number changes, the stage computes something else than it did when the numbers were taken.

One micro pipeline (sft -> rm-helpfulness + rm-safety -> ppo -> compare) is built once per module, stage by
stage, on one torch thread, with a private data/generation cache so nothing comes from an earlier session.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Checkpoints every 2 of 6 steps, a loss logged every step: the resume tests kill after checkpoint-4.
SFT = ("stages.sft.max_steps=6", "stages.sft.save_steps=2", "stages.sft.logging_steps=1")
RM = ("stages.reward.helpfulness.max_steps=6", "stages.reward.helpfulness.save_steps=2",
      "stages.reward.helpfulness.logging_steps=1")
RM_SAFETY = ("stages.reward.safety.max_steps=4", "stages.reward.safety.logging_steps=1")
KILL_AFTER = 4
PPO = ("stages.ppo.learning_rate=1e-3",)  # moves the policy enough that its answers differ from sft's
# base, sft and ppo answer the same prompts by sampling: greedy micro models all answer blanks
COMPARE = ("stages.compare.checkpoints=[base, sft, ppo]", "stages.compare.temperature=1.0")
RTOL = 1e-4


def cli(command: str, root: Path, runs: Path, *args: str) -> int:
    """`camelid COMMAND --profile micro` in this process, on registry ``root`` with run folders under ``runs``."""
    from camelid.cli import main

    return main([command, "--config", str(REPO / "pipelines.yaml"), "--profile", "micro", "--registry", str(root),
                 f"runs_dir={runs}", *args])


def weights(model_dir) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    out: dict[str, torch.Tensor] = {}
    for f in sorted(Path(model_dir).glob("*.safetensors")):
        out.update(load_file(str(f)))
    assert out, f"no safetensors in {model_dir}"
    return out


def unchanged(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> list[str]:
    return sorted(k for k in before if torch.equal(before[k], after[k]))


def flat(obj, prefix: str = "") -> dict:
    """{"a/0/b": number}: pytest.approx compares flat mappings only."""
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list | tuple):
        items = enumerate(obj)
    else:
        return {prefix: obj}
    out: dict = {}
    for k, v in items:
        out.update(flat(v, f"{prefix}/{k}" if prefix else str(k)))
    return out


def assert_pinned(got, expected, what: str = "") -> None:
    """TRL/torchtune-style golden numbers: same keys, every number within rtol 1e-4 of the pinned one."""
    assert flat(got) == pytest.approx(flat(expected), rel=RTOL, abs=1e-6), what


# ---- the micro pipeline, built once per module ------------------------------------------------------------

@pytest.fixture(scope="module")
def workspace(tmp_path_factory, micro_base_registry):
    """A private registry (base/v1), runs folder and cache; one torch thread while the stages run."""
    tmp = tmp_path_factory.mktemp("contracts")
    root = tmp / "registry"
    shutil.copytree(micro_base_registry, root)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAMELID_CACHE", str(tmp / "cache"))
        mp.setenv("CAMELID_NO_PROGRESS", "1")
        yield SimpleNamespace(root=root, runs=tmp / "runs", tmp=tmp)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def sft_run(workspace):
    from camelid.registry import Registry

    assert cli("sft", workspace.root, workspace.runs, *SFT) == 0
    snapshot = workspace.tmp / "after-sft"  # base + sft only: where the reward resume test starts
    shutil.copytree(workspace.root, snapshot)
    return Registry(workspace.root).resolve("sft"), snapshot


@pytest.fixture(scope="module")
def reward_run(workspace, sft_run):
    from camelid.registry import Registry

    assert cli("reward", workspace.root, workspace.runs, "--objective", "helpfulness", *RM) == 0
    assert cli("reward", workspace.root, workspace.runs, "--objective", "safety", *RM_SAFETY) == 0
    registry = Registry(workspace.root)
    return registry.resolve("rm-helpfulness"), registry.resolve("rm-safety")


@pytest.fixture(scope="module")
def ppo_run(workspace, reward_run):
    from camelid.registry import Registry

    assert cli("ppo", workspace.root, workspace.runs, *PPO) == 0
    return Registry(workspace.root).resolve("ppo")


@pytest.fixture(scope="module")
def compare_run(workspace, ppo_run):
    from camelid.registry import Registry

    assert cli("compare", workspace.root, workspace.runs, "base", "sft", "ppo", COMPARE[1]) == 0
    return Registry(workspace.root).resolve("report")


def inputs_of(art) -> dict[str, str]:
    return {role: rec["ref"] for role, rec in art.manifest["inputs"].items()}


def distance(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> float:
    """L2 norm of the weight change over the tensors both hold: how far training moved the model."""
    return float(sum((after[k].double() - before[k].double()).pow(2).sum() for k in before if k in after) ** 0.5)


def assert_records_section(art, stage_path: str, *overrides: str) -> None:
    """The manifest's config holds the stage's resolved section, as `camelid --profile micro OVERRIDES` sets it.

    (It may hold more: settings the stage reads from elsewhere, e.g. shared.safety_threshold since #15.)
    """
    from camelid.config import load_config

    node = load_config(REPO / "pipelines.yaml", "micro", list(overrides)).stages
    for part in stage_path.split("."):
        node = getattr(node, part)
    want = node.model_dump(mode="json")
    recorded = art.manifest["config"]
    assert {k: recorded.get(k) for k in want} == want


def resumed_from(metrics: dict) -> str | None:
    """The checkpoint a run continued from: metrics.resumed_from (the reward stage kept it in metrics.train
    before #15 gave every stage the same driver)."""
    if "resumed_from" in metrics:
        return metrics["resumed_from"]
    return metrics["train"]["resumed_from"]


# ---- sft ---------------------------------------------------------------------------------------------------

SFT_PINNED = {
    "loss_curve": [[1, 6.2429], [2, 6.2481], [3, 6.0973], [4, 6.0894], [5, 6.0088], [6, 5.8511]],
    "train_loss": 6.089590390523274,
    "eval_loss_before": 6.254863262176514,
    "eval_loss": 5.975414276123047,
    "distance": 0.6809339939656147,
}


def test_sft_publishes_trains_every_weight_and_keeps_its_losses(sft_run, workspace):
    from camelid.registry import Registry

    art, _ = sft_run
    assert art.ref == "sft@v1" and art.kind == "sft"
    assert inputs_of(art) == {"model": "base@v1"}
    assert_records_section(art, "sft", *SFT)
    m = art.manifest["metrics"]
    assert m["steps"] == 6 and resumed_from(m) is None
    before, after = weights(Registry(workspace.root).resolve("base").model_path), weights(art.model_path)
    assert before.keys() == after.keys()
    assert not unchanged(before, after), "parameters the SFT run did not train"
    got = {"loss_curve": m["loss_curve"], "train_loss": m["train_loss"], "eval_loss_before": m["eval_loss_before"],
           "eval_loss": m["eval_loss"], "distance": distance(before, after)}
    assert_pinned(got, SFT_PINNED)


# ---- reward ------------------------------------------------------------------------------------------------

RM_PINNED = {
    "losses": [0.9761450290679932, 0.9453523755073547, 0.9622126221656799, 0.9400519728660583, 0.9294410943984985,
               0.9439616203308105],
    "accuracy": {"helpfulness": 0.578125, "safety": 0.3333333333333333},
    "distance": 0.48361891913752963,
}
RM_SAFETY_PINNED = {
    "losses": [1.1201831102371216, 1.1115652322769165, 1.123599886894226, 1.005958914756775],
    "accuracy": {"helpfulness": 0.4375, "safety": 0.7777777777777778},
    "distance": 0.38658257430527343,
    "data": {"loaded": 128, "dropped_unsafe_chosen": 7, "mix_added": 13, "dropped_too_long": 0, "train_pairs": 134},
}


def test_reward_models_publish_train_the_body_and_keep_their_losses(sft_run, reward_run):
    sft, _ = sft_run
    body = weights(sft.model_path)  # LlamaForCausalLM: model.* (+ lm_head when untied)
    body = {k: v for k, v in body.items() if k.startswith("model.")}
    for art, objective, overrides, pinned in ((reward_run[0], "helpfulness", RM, RM_PINNED),
                                              (reward_run[1], "safety", RM_SAFETY, RM_SAFETY_PINNED)):
        assert art.ref == f"rm-{objective}@v1" and art.kind == "reward"
        assert inputs_of(art) == {"init": "sft@v1"}
        assert_records_section(art, f"reward.{objective}", *overrides)
        m = art.manifest["metrics"]
        assert m["train"]["steps"] == len(pinned["losses"]) and resumed_from(m) is None
        rm = weights(art.model_path)
        assert set(rm) == set(body) | {"score.weight"}, "a sequence-classification model: the SFT body + a head"
        assert rm["score.weight"].shape == (1, body["model.embed_tokens.weight"].shape[1])
        assert rm["score.weight"].abs().sum() > 0
        assert not unchanged(body, rm), f"rm-{objective}: body parameters not trained"
        got = {"losses": m["train"]["losses"],
               "accuracy": {k: v["overall"] for k, v in m["eval"]["accuracy"].items()},
               "distance": distance(body, rm)}
        if "data" in pinned:
            got["data"] = {k: m["data"][k] for k in pinned["data"]}
        assert_pinned(got, pinned, f"rm-{objective}")


# ---- ppo ---------------------------------------------------------------------------------------------------

PPO_PINNED = {
    "train_last": {
        "reward/combined": -0.13860805332660675, "reward/helpfulness": -0.10403704643249512,
        "reward/safety": -0.14817190170288086, "reward/whitened": -0.4513644278049469,
        "kl": 0.2120773196220398, "loss/policy": -0.012698672711849213, "loss/value": 0.49120649322867393,
        "entropy": 6.222372055053711, "approx_kl": 0.00021587259835684932, "response_length": 14.75,
        "value_clip_fraction": 0.2578125, "safety_share": 0.75,
    },
    "evals": [[0, -0.5909580150619149], [2, -0.5909580150619149]],
    "eval": {"reward/combined": -0.0005826160777360201, "kl": -0.01592731475830078},
    "distance": 0.8757047161144593,
}


def test_ppo_publishes_moves_every_policy_weight_and_keeps_its_rewards(sft_run, ppo_run):
    sft, _ = sft_run
    art = ppo_run
    assert art.ref == "ppo@v1" and art.kind == "ppo"
    assert inputs_of(art) == {"policy": "sft@v1", "reward_helpfulness": "rm-helpfulness@v1",
                              "reward_safety": "rm-safety@v1", "value_init": "rm-helpfulness@v1"}
    assert_records_section(art, "ppo", *PPO)
    m = art.manifest["metrics"]
    assert m["iterations"] == 3 and m["train_last"]["iteration"] == 3
    before, after = weights(sft.model_path), weights(art.model_path)
    assert before.keys() == after.keys()
    assert not unchanged(before, after), "policy parameters PPO did not move"
    got = {"train_last": {k: m["train_last"][k] for k in PPO_PINNED["train_last"]},
           "evals": [[e["iteration"], e["reward/combined"]] for e in m["evals"]],
           "eval": {k: m["eval"][k] for k in PPO_PINNED["eval"]},
           "distance": distance(before, after)}
    assert_pinned(got, PPO_PINNED)


# ---- compare -----------------------------------------------------------------------------------------------

COMPARE_PINNED = {
    "base@v1": {"mean_length_words": 4.4375, "mean_score": {
        "helpfulness": -0.05832510767504573, "safety": -0.09770926475175656, "combined": -0.26544469222426414,
        "oracle": 0.05625}},
    "sft@v1": {"mean_length_words": 4.3125, "mean_score": {
        "helpfulness": -0.054413875099271536, "safety": -0.11015473259612918, "combined": -0.2779442956671119,
        "oracle": 0.05625}},
    "ppo@v1": {"mean_length_words": 4.1875, "mean_score": {
        "helpfulness": -0.047483991365879774, "safety": -0.05585040815640241, "combined": -0.21538007690105587,
        "oracle": 0.05625}},
}
# win rate of the second checkpoint over the first, per judge
COMPARE_PAIRS_PINNED = {
    "base@v1 vs sft@v1": {"helpfulness": 0.40625, "safety": 0.40625, "combined": 0.40625, "oracle": 0.5},
    "base@v1 vs ppo@v1": {"helpfulness": 0.25, "safety": 0.4375, "combined": 0.375, "oracle": 0.5},
    "sft@v1 vs ppo@v1": {"helpfulness": 0.46875, "safety": 0.40625, "combined": 0.46875, "oracle": 0.5},
}


def test_compare_publishes_a_report_with_its_scores(compare_run):
    import json

    art = compare_run
    assert art.ref == "report@v1" and art.kind == "report"
    assert inputs_of(art) == {"checkpoint0": "base@v1", "checkpoint1": "sft@v1", "checkpoint2": "ppo@v1",
                              "reward_helpfulness": "rm-helpfulness@v1", "reward_safety": "rm-safety@v1"}
    assert_records_section(art, "compare", *COMPARE)
    assert all((art.path / f).is_file() for f in ("report.html", "report.json", "answers.jsonl"))
    m = art.manifest["metrics"]
    assert m["n_prompts"] == 16
    got = {ref: {"mean_length_words": c["mean_length_words"], "mean_score": c["mean_score"]}
           for ref, c in m["checkpoints"].items()}
    assert_pinned(got, COMPARE_PINNED)
    report = json.loads((art.path / "report.json").read_text())
    pairs = {f"{p['a']} vs {p['b']}": {j: w["win_rate"]["value"] for j, w in p["judges"].items()}
             for p in report["pairs"]}
    assert_pinned(pairs, COMPARE_PAIRS_PINNED)


# ---- camelid run sees what the stage commands published as up to date ----------------------------------------

def test_run_skips_every_stage_the_commands_already_published(compare_run, workspace):
    """The stage CLIs publish with the config section and input hashes that `camelid run` compares."""
    from camelid.registry import Registry

    registry = Registry(workspace.root)
    names = ("base", "sft", "rm-helpfulness", "rm-safety", "ppo", "report")
    before = {n: registry.versions(n) for n in names}
    assert all(v == ["v1"] for v in before.values()), before
    # base/v1 was built with toy_base.eval_prompts=0 (conftest's micro_base_registry)
    assert cli("run", workspace.root, workspace.runs, "toy_base.eval_prompts=0", *SFT, *RM, *RM_SAFETY, *PPO,
               *COMPARE) == 0
    assert {n: registry.versions(n) for n in names} == before


# ---- killed and resumed == uninterrupted (torchtune-style) ----------------------------------------------------

def kill_after_checkpoint(monkeypatch, step: int) -> None:
    """Ctrl-C right after transformers' Trainer has written checkpoint-<step>."""
    from transformers import Trainer

    save = Trainer._save_checkpoint

    def save_then_interrupt(self, *args, **kwargs):
        save(self, *args, **kwargs)
        if self.state.global_step == step:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_save_checkpoint", save_then_interrupt)


def count_training_steps(monkeypatch) -> list[int]:
    """The global step of every optimizer step the Trainer takes from now on."""
    from transformers import Trainer

    step, seen = Trainer.training_step, []

    def counted(self, *args, **kwargs):
        seen.append(self.state.global_step + 1)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "training_step", counted)
    return seen


def kill_and_resume(monkeypatch, capsys, command: list[str], root: Path, runs: Path):
    """Run ``command`` until checkpoint-4 is written, interrupt it, rerun it with --resume: the published artifact."""
    from camelid.registry import Registry

    with monkeypatch.context() as mp:
        kill_after_checkpoint(mp, KILL_AFTER)
        assert cli(command[0], root, runs, *command[1:]) == 130  # the CLI's exit status for an interrupt
    name = {"sft": "sft", "reward": "rm-helpfulness"}[command[0]]
    assert Registry(root).versions(name) == [], "an interrupted run published"
    capsys.readouterr()  # the Trainer may print its log lines; the ref printed after resuming is what counts
    with monkeypatch.context() as mp:
        steps = count_training_steps(mp)
        assert cli(command[0], root, runs, "--resume", *command[1:]) == 0
    assert steps == list(range(KILL_AFTER + 1, 7)), "the resumed run did not continue from checkpoint-4"
    art = Registry(root).resolve(name)
    assert art.ref == f"{name}@v1" and capsys.readouterr().out.splitlines()[-1] == art.ref
    return art


def assert_same_weights(a_dir, b_dir) -> None:
    a, b = weights(a_dir), weights(b_dir)
    assert a.keys() == b.keys()
    worst = max((float((a[k] - b[k]).abs().max()), k) for k in a)
    assert worst[0] <= 1e-6, f"largest difference {worst[0]:.3g} in {worst[1]}"


def test_sft_killed_and_resumed_equals_the_uninterrupted_run(sft_run, micro, monkeypatch, capsys):
    straight, _ = sft_run
    cfg, registry = micro()  # another copy of the same base/v1: the same run, in another registry
    art = kill_and_resume(monkeypatch, capsys, ["sft", *SFT], registry.root, cfg.runs_path())
    got, want = art.manifest["metrics"], straight.manifest["metrics"]
    assert resumed_from(got) == f"checkpoint-{KILL_AFTER}" and got["steps"] == 6
    assert flat(got["loss_curve"]) == pytest.approx(flat(want["loss_curve"]), rel=RTOL)
    assert got["eval_loss"] == pytest.approx(want["eval_loss"], rel=RTOL)
    assert_same_weights(art.model_path, straight.model_path)


def test_reward_killed_and_resumed_equals_the_uninterrupted_run(sft_run, reward_run, tmp_path, monkeypatch, capsys):
    straight = reward_run[0]
    _, after_sft = sft_run
    root = tmp_path / "registry"
    shutil.copytree(after_sft, root)  # base/v1 + sft/v1: the init the uninterrupted run started from
    art = kill_and_resume(monkeypatch, capsys, ["reward", "--objective", "helpfulness", *RM], root, tmp_path / "runs")
    got, want = art.manifest["metrics"], straight.manifest["metrics"]
    assert resumed_from(got) == f"checkpoint-{KILL_AFTER}" and got["train"]["steps"] == 6
    assert flat(got["train"]["losses"]) == pytest.approx(flat(want["train"]["losses"]), rel=RTOL)
    assert flat(got["eval"]["accuracy"]) == pytest.approx(flat(want["eval"]["accuracy"]), rel=RTOL)
    assert_same_weights(art.model_path, straight.model_path)
