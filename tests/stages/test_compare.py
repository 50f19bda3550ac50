"""`camelid compare` on the micro registry: generation cache, judges, publish, CLI, export."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from camelid import models
from camelid.eval.generations import GenerationCache
from camelid.registry import config_hash
from camelid.reward import scoring
from camelid.stage import run_job
from camelid.stages import job_for


class FakeScorer:
    """Stands in for a trained RM: helpfulness likes longer answers, safety likes refusals."""

    def __init__(self, objective: str):
        self.objective = objective

    def score(self, conversations, responses):
        from camelid.data.toyworld.detect import is_refusal

        if self.objective == "helpfulness":
            return torch.tensor([len(r.split()) / 4.0 for r in responses])
        return torch.tensor([2.0 if is_refusal(r) else -0.5 + 0.01 * len(r) for r in responses])


def publish_variant(registry, name: str, kind: str, scale: float, seed: int):
    """A copy of base/v1 with perturbed weights, published as ``name``."""
    model, tok = models.load_causal_lm("base", registry, device="cpu")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))
    with registry.publish(name, kind, config={"variant": seed}) as pub:
        model.save_pretrained(pub.dir / "model", safe_serialization=True)
        tok.save_pretrained(pub.dir / "model")
    return pub.artifact


@pytest.fixture
def world(micro, monkeypatch, tmp_path):
    """micro registry with base, a perturbed `sft`, and two stand-in reward models; generate() counted."""
    cfg, registry = micro("stages.compare.checkpoints=[base, sft]", "stages.compare.bootstrap=100")
    publish_variant(registry, "sft", "sft", 0.05, 1)
    for name in ("rm-helpfulness", "rm-safety"):
        with registry.publish(name, "reward", config={"fake": name}) as pub:
            (pub.dir / "README").write_text("stand-in RM for the compare tests\n")
    monkeypatch.setattr(scoring, "load_reward_model",
                        lambda art, registry, **_: FakeScorer(art.name.removeprefix("rm-")))
    calls = []
    real = models.generate

    def counting_generate(*args, **kwargs):
        calls.append(len(args[2]))
        return real(*args, **kwargs)

    monkeypatch.setattr(models, "generate", counting_generate)
    monkeypatch.setenv("CAMELID_CACHE", str(tmp_path / "cache"))
    return cfg, registry, calls


def test_compare_publishes_a_report_that_camelid_run_sees_as_up_to_date(world):
    cfg, registry, calls = world
    art = run_job(cfg, registry, "compare")
    assert art.ref == "report@v1" and art.kind == "report"
    assert calls == [16, 16]  # each checkpoint answered the 16 micro prompts once
    job = job_for(cfg, "compare")
    inputs = {role: registry.resolve(ref) for role, ref in job.inputs.items()}
    assert set(inputs) == {"checkpoint0", "checkpoint1", "reward_helpfulness", "reward_safety"}
    assert registry.find_matching("report", config_hash(job.config), inputs).ref == "report@v1"

    numbers = json.loads((art.path / "report.json").read_text())
    assert numbers["judges"] == ["helpfulness", "safety", "combined", "oracle"]
    assert numbers["prompts"]["n"] == 16 and sum(numbers["prompts"]["groups"].values()) == 16
    (pair,) = numbers["pairs"]
    assert (pair["a"], pair["b"]) == ("base@v1", "sft@v1")
    for j in numbers["judges"]:
        w = pair["judges"][j]
        assert w["win"]["value"] + w["tie"]["value"] + w["loss"]["value"] == pytest.approx(1.0)
        assert w["win_rate"]["lo"] <= w["win_rate"]["value"] <= w["win_rate"]["hi"]
    assert set(numbers["ratings"]["combined"]) == {"base@v1", "sft@v1"}
    assert numbers["refusal_detector"]["name"] == "toy-world oracle"
    for c in numbers["checkpoints"]:
        assert c["oracle"]["n"] == 16
        assert 0.0 <= c["refusal_rate"] <= 1.0
        # the oracle's per-prompt verdicts give the same task-family accuracies and over-refusal as its summary
        families = c["task_accuracy_per_family"]
        assert families and not {"harmful", "borderline"} & set(families)
        assert families == {f: c["oracle"]["per_family"][f] for f in families}
        assert c["over_refusal_rate"] == c["oracle"]["over_refusal"]
        assert c["mean_length_tokens"] >= c["mean_length_words"]  # every word is one token or more
    assert set(pair["task_accuracy_per_family"]) == set(families)
    for d in pair["task_accuracy_per_family"].values():
        assert d["diff"]["value"] == pytest.approx(d["a"] - d["b"])

    # per-prompt numbers agree with the aggregate ones
    rows = [json.loads(line) for line in (art.path / "answers.jsonl").read_text().splitlines()]
    assert len(rows) == 16
    mean_h = np.mean([r["answers"]["sft@v1"]["scores"]["helpfulness"] for r in rows])
    assert numbers["checkpoints"][1]["mean_score"]["helpfulness"] == pytest.approx(mean_h)
    # examples come most-disagreed first
    dis = [e["disagreement"] for e in numbers["examples"]]
    assert dis == sorted(dis, reverse=True) and len(dis) == 16
    html = (art.path / "report.html").read_text()
    assert "<table id=\"pairs\">" in html and "data:image/png;base64," in html
    assert art.manifest["metrics"]["n_prompts"] == 16


def test_generation_cache_means_a_new_checkpoint_only_generates_for_itself(world):
    cfg, registry, calls = world
    run_job(cfg, registry, "compare")
    assert len(calls) == 2
    run_job(cfg, registry, "compare")  # same checkpoints, prompts, sampling: nothing to generate
    assert len(calls) == 2
    publish_variant(registry, "ppo", "ppo", 0.05, 2)
    cfg3 = cfg.model_copy(deep=True)
    cfg3.stages.compare.checkpoints = ["base", "sft", "ppo"]
    art = run_job(cfg3, registry, "compare")
    assert len(calls) == 3  # only ppo
    numbers = json.loads((art.path / "report.json").read_text())
    assert [c["from_cache"] for c in numbers["checkpoints"]] == [True, True, False]
    assert len(numbers["pairs"]) == 3 and len(numbers["ratings"]["oracle"]) == 3
    cfg4 = cfg.model_copy(deep=True)
    cfg4.stages.compare.seed = 1  # other sampling settings: a different cache entry
    run_job(cfg4, registry, "compare")
    assert len(calls) == 5


def test_prompt_set_rows_go_to_set_answers_and_the_callers_sets_keep_them(world, monkeypatch):
    from camelid.data.spec import DataSpec
    from camelid.eval import compare

    cfg, registry, _ = world
    cfg = cfg.model_copy(deep=True)
    cfg.stages.compare.sets = {"extra": DataSpec(format="toy", split="eval", n=4)}
    logged = []
    monkeypatch.setattr(compare, "table_lines", lambda sets: logged.append(sets) or [])
    art = run_job(cfg, registry, "compare")
    (sets,) = logged  # what run() holds after publish_report: not emptied by it
    assert [row["id"] for row in sets["extra"]["rows"]] == [json.loads(line)["id"] for line in
                                                            (art.path / "set_answers.jsonl").read_text().splitlines()]
    assert len(sets["extra"]["rows"]) == 4
    assert "rows" not in json.loads((art.path / "report.json").read_text())["sets"]["extra"]


def test_generation_cache_rejects_a_truncated_entry(tmp_path):
    cache = GenerationCache(tmp_path)
    cache.put("k" * 32, ["a", "b"], {})
    assert cache.get("k" * 32, 2) == ["a", "b"]
    assert cache.get("k" * 32, 3) is None
    (tmp_path / ("k" * 32 + ".json")).write_text("{not json")
    assert cache.get("k" * 32, 2) is None


def test_cli_with_reference_export_and_prompt_file(world, tmp_path, repo, capsys):
    cfg, registry, calls = world
    from camelid.cli import main

    prompts = tmp_path / "prompts.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"What is {i} plus {i}? <b>&amp;</b>"}],
             "is_safety": False, "category": "custom"} for i in range(6)]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out, pairs = tmp_path / "out", tmp_path / "pairs.jsonl"
    rc = main(["compare", "base", "sft", "--config", str(repo / "pipelines.yaml"), "--profile", "micro",
               "--registry", str(registry.root), "--prompts", f"prompts:{prompts}", "--reference", "base",
               "--out", str(out), "--export-pairs", str(pairs), "stages.compare.bootstrap=50"])
    assert rc == 0, capsys.readouterr().err
    numbers = json.loads((out / "report.json").read_text())
    assert numbers["judges"] == ["helpfulness", "safety", "combined"]  # no oracle off the toy world
    assert numbers["reference"] == "base@v1"
    base, sft = numbers["checkpoints"]
    assert base["kl_to_reference"] == pytest.approx(0.0, abs=1e-5)  # the reference against itself
    assert sft["kl_to_reference"] is not None and base["reference_perplexity"] > 1.0
    html = (out / "report.html").read_text()
    assert "&lt;b&gt;&amp;amp;&lt;/b&gt;" in html and "<b>&amp;</b>" not in html  # prompt text escaped
    exported = [json.loads(line) for line in pairs.read_text().splitlines()]
    for row in exported:
        assert row["prompt"][-1]["role"] == "user"
        assert set(row["responses"]) <= {"base@v1", "sft@v1"} and len(row["responses"]) == 2
    try:
        from camelid.eval.annotate.importers import items_from_file
    except ImportError:
        return
    if exported:
        assert len(items_from_file(pairs)) <= len(exported)


def test_cli_rejects_the_same_checkpoint_twice(world, repo, capsys):
    cfg, registry, _ = world
    from camelid.cli import main

    rc = main(["compare", "base", "base@v1", "--config", str(repo / "pipelines.yaml"), "--profile", "micro",
               "--registry", str(registry.root)])
    assert rc == 2
    assert "same checkpoint twice" in capsys.readouterr().err


def publish_stand_in_rm(registry, name: str, seed: int):
    """A real (untrained) reward artifact: base/v1 with a seeded score head, so every process loads the same."""
    from transformers import AutoModelForSequenceClassification

    base = registry.resolve("base")
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(base.model_path, num_labels=1)
    with registry.publish(name, "reward", config={"stand_in": seed}) as pub:
        model.save_pretrained(pub.dir / "model", safe_serialization=True)
        models.load_tokenizer(base).save_pretrained(pub.dir / "model")


def launch_two_processes(args: list[str], cache) -> subprocess.CompletedProcess:
    """`camelid ARGS` on 2 CPU processes (gloo): `--cpu --num_processes 2` would silently run one."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
           "CAMELID_NO_PROGRESS": "1", "CAMELID_CACHE": str(cache)}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "camelid.cli", *args]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture
def judged(micro):
    """micro registry with base, a perturbed `sft` and two real (untrained) reward models: no monkeypatching,
    so launched processes see the same judges as this one."""
    cfg, registry = micro()
    publish_variant(registry, "sft", "sft", 0.05, 1)
    publish_stand_in_rm(registry, "rm-helpfulness", 1)
    publish_stand_in_rm(registry, "rm-safety", 2)
    return cfg, registry


def test_two_processes_split_the_prompts_and_publish_the_one_process_report(judged, tmp_path, repo, monkeypatch):
    """2 CPU processes answer, score and KL-measure 3 + 4 of 7 prompts; one report, equal to 1 process's."""
    from camelid.cli import main

    cfg, registry = judged
    args = ["compare", "base", "sft", "--reference", "base", "--n", "7", "--config", str(repo / "pipelines.yaml"),
            "--profile", "micro", "--registry", str(registry.root), "stages.compare.bootstrap=50"]
    # separate generation caches: both runs generate every answer (a cache hit would prove nothing)
    out = launch_two_processes(args, tmp_path / "cache-2")
    assert out.stdout.splitlines()[0] == "report@v1" and out.stdout.count("report@") == 1  # one process prints
    assert registry.versions("report") == ["v1"], "every process published its own report"
    for ckpt in ("base@v1", "sft@v1"):  # each process generated its own share, in prompt order
        assert f"{ckpt}: generating 3 answers (process 0: prompts 0-2 of 7)" in out.stderr
        assert f"{ckpt}: generating 4 answers (process 1: prompts 3-6 of 7)" in out.stderr
    two = registry.resolve("report@v1")
    assert two.kind == "report" and two.manifest["metrics"]["world_size"] == 2

    monkeypatch.setenv("CAMELID_CACHE", str(tmp_path / "cache-1"))
    assert main(args) == 0
    one = registry.resolve("report@v2")
    assert one.manifest["metrics"]["world_size"] == 1
    report_1, report_2 = (json.loads((a.path / "report.json").read_text()) for a in (one, two))
    assert report_1["judges"] == ["helpfulness", "safety", "combined", "oracle"]
    assert report_1["prompts"]["n"] == 7 and report_1["reference"] == "base@v1"
    assert [c["from_cache"] for c in report_1["checkpoints"] + report_2["checkpoints"]] == [False] * 4
    answers_1, answers_2 = ([json.loads(line) for line in (a.path / "answers.jsonl").read_text().splitlines()]
                            for a in (one, two))
    responses = [{ref: a["response"] for ref, a in row["answers"].items()} for row in answers_1]
    assert [{ref: a["response"] for ref, a in row["answers"].items()} for row in answers_2] == responses
    # Greedy: the same answers, so the same oracle verdicts, rates, lengths, win/tie/loss with CIs, ratings and
    # example order. RM scores may differ in the last float32 bits (3 + 4 prompts pad to other widths than 7).
    for key in ("pairs", "ratings", "prompts", "judges", "sampling"):
        assert report_2[key] == report_1[key], key
    assert [e["index"] for e in report_2["examples"]] == [e["index"] for e in report_1["examples"]]
    for c1, c2 in zip(report_1["checkpoints"], report_2["checkpoints"]):
        assert c2["oracle"] == c1["oracle"] and c2["refusal_rate"] == c1["refusal_rate"]
        assert c2["mean_length_words"] == c1["mean_length_words"]
    assert_same_numbers(report_2, report_1)
    assert_same_numbers(answers_2, answers_1)
    per_run = {"world_size", "seconds"}  # how the run went, not what it measured
    assert_same_numbers({k: v for k, v in two.manifest["metrics"].items() if k not in per_run},
                        {k: v for k, v in one.manifest["metrics"].items() if k not in per_run})
    kl = {ref: c["kl_to_reference"] for ref, c in one.manifest["metrics"]["checkpoints"].items()}
    assert kl["base@v1"] == pytest.approx(0.0, abs=1e-5) and abs(kl["sft@v1"]) > 1e-3  # KL was measured


def assert_same_numbers(got, want, where: str = "") -> None:
    """Equal JSON, except that floats need only agree to float32 rounding."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), where
        for k in want:
            assert_same_numbers(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same_numbers(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        # float32 rounding is relative to the sums' operands, not the result: a score near 0 (0.0066) came out
        # 2e-8 apart when its batch held other answers (each distinct answer is scored once, in whichever batch)
        assert got == pytest.approx(want, rel=1e-6, abs=1e-6), where
    else:
        assert got == want, where


def test_camelid_run_on_two_processes_compares_after_ppo(judged, tmp_path, repo):
    """`camelid run` under accelerate: compare still splits its work after ppo, which ends the process group."""
    cfg, registry = judged
    out = launch_two_processes(
        ["run", "--only", "ppo", "--only", "compare", "--config", str(repo / "pipelines.yaml"), "--profile", "micro",
         "--registry", str(registry.root), f"runs_dir={tmp_path / 'runs'}", "stages.ppo.iterations=1",
         "stages.ppo.eval_prompts=null", "stages.compare.checkpoints=[sft, ppo]", "stages.compare.prompts.n=6",
         "stages.compare.bootstrap=50"], tmp_path / "cache")
    assert "2 process(es): ppo -> compare" in out.stderr
    assert "sft@v1: generating 3 answers (process 1: prompts 3-5 of 6)" in out.stderr
    assert registry.versions("ppo") == ["v1"] and registry.versions("report") == ["v1"]
    report = registry.resolve("report")
    assert report.manifest["metrics"]["world_size"] == 2
    assert report.manifest["inputs"]["checkpoint1"]["ref"] == "ppo@v1"
    assert json.loads((report.path / "report.json").read_text())["prompts"]["n"] == 6


def scripted_generate(model, tok, conversations, **sampling):
    """sft refuses every prompt that says "kill"; base helps with everything (the micro models' own answers
    are noise, and refusal rates of noise test nothing)."""
    sft = "/sft/" in str(model.name_or_path)
    return ["I'm sorry, but I can't help with that." if sft and "kill" in conv[-1]["content"]
            else "Use a tripod and a longer exposure." for conv in conversations]


def test_cli_on_xstest_prompts_reports_refusal_and_over_refusal(world, tmp_path, repo, capsys, monkeypatch):
    """`--prompts xstest:FILE` (the upstream CSV): string-match refusal rates on unsafe and on safe prompts."""
    cfg, registry, _ = world
    from camelid.cli import main

    monkeypatch.setattr(models, "generate", scripted_generate)
    csv = repo / "tests/fixtures/data/xstest-upstream/xstest_prompts.csv"  # 2 safe, 2 unsafe ("shoot", "kill")
    rc = main(["compare", "base", "sft", "--config", str(repo / "pipelines.yaml"), "--profile", "micro",
               "--registry", str(registry.root), "--prompts", f"xstest:{csv}", "--reference", "base",
               "--out", str(tmp_path / "out"), "stages.compare.bootstrap=50"])
    assert rc == 0, capsys.readouterr().err
    numbers = json.loads((tmp_path / "out" / "report.json").read_text())
    assert numbers["prompts"]["format"] == "xstest"
    assert numbers["prompts"]["groups"] == {"harmful": 2, "borderline": 2, "benign": 0}
    assert numbers["refusal_detector"]["name"] == "string match"
    base, sft = numbers["checkpoints"]
    assert (base["harmful_refusal_rate"], base["over_refusal_rate"]) == (0.0, 0.0)
    assert (sft["harmful_refusal_rate"], sft["over_refusal_rate"]) == (0.5, 0.5)  # "kill my landlord" / "kill an hour"
    assert sft["task_accuracy_per_family"] is None  # no oracle off the toy world
    tok = models.load_tokenizer("base", registry)
    help_tokens = len(tok("Use a tripod and a longer exposure.", add_special_tokens=False)["input_ids"])
    assert base["mean_length_tokens"] == help_tokens and base["mean_length_words"] == 7.0
    (pair,) = numbers["pairs"]
    w = pair["judges"]["combined"]["win_rate"]
    assert w["lo"] <= w["value"] <= w["hi"]

    rows = [json.loads(line) for line in (tmp_path / "out" / "answers.jsonl").read_text().splitlines()]
    refused = {r["category"]: r["answers"]["sft@v1"]["refusal_phrase"] for r in rows}
    assert refused == {"xstest-safe/homonyms": None, "xstest-unsafe/contrast_homonyms": None,
                       "xstest-safe/figurative_language": "i can't help",
                       "xstest-unsafe/contrast_figurative_language": "i can't help"}
    metrics = registry.resolve("report").manifest["metrics"]
    assert metrics["refusal_detector"] == "string match"
    head = metrics["checkpoints"]["sft@v1"]
    assert (head["harmful_refusal_rate"], head["over_refusal_rate"]) == (0.5, 0.5)
    assert metrics["checkpoints"]["base@v1"]["kl_to_reference"] == pytest.approx(0.0, abs=1e-5)
    assert metrics["pairs"][0]["win_rate"]["combined"] == w


def test_cli_blames_an_unknown_prompt_format(world, repo, capsys):
    cfg, registry, _ = world
    from camelid.cli import main

    csv = repo / "tests/fixtures/data/xstest-upstream/xstest_prompts.csv"
    rc = main(["compare", "base", "sft", "--config", str(repo / "pipelines.yaml"), "--profile", "micro",
               "--registry", str(registry.root), "--prompts", f"xstst:{csv}"])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown data format 'xstst'" in err and "no such file" not in err
