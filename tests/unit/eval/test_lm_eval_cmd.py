"""`camelid eval`: lm-eval's tasks (local files in lm-eval's own format, no Hub) on a registry model, published
as an eval artifact with the model as its input; the model card and compare find it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from camelid.errors import CamelidError

TASKS = Path(__file__).resolve().parents[2] / "fixtures" / "lm_eval"
MC, GEN = str(TASKS / "camelid_toy_mc.yaml"), str(TASKS / "camelid_toy_gen.yaml")


@pytest.fixture
def registry(micro_base_registry, tmp_path):
    import shutil

    from camelid.registry import Registry

    shutil.copytree(micro_base_registry, tmp_path / "registry")
    return Registry(tmp_path / "registry")


def test_eval_publishes_lm_eval_results_with_lineage(registry, one_torch_thread, tmp_path):
    from camelid.eval.lm_eval_cmd import evaluate

    base = registry.resolve("base")
    art = evaluate("base", [f"{MC},{GEN}"], registry, samples=True, device="cpu")
    assert art.kind == "eval" and art.ref == "eval-base@v1"
    assert art.manifest["inputs"]["model"]["hash"] == base.hash  # lineage: the model it scored
    tasks = art.manifest["metrics"]["tasks"]
    assert set(tasks) == {"camelid_toy_mc", "camelid_toy_gen"}
    assert set(tasks["camelid_toy_mc"]) == {"acc"} and set(tasks["camelid_toy_gen"]) == {"exact_match (last-number)"}
    assert art.manifest["metrics"]["n_samples"] == {"camelid_toy_mc": 6, "camelid_toy_gen": 6}
    results = json.loads((art.path / "results.json").read_text())
    assert results["configs"]["camelid_toy_mc"]["output_type"] == "multiple_choice"
    rows = [json.loads(line) for line in (art.path / "samples.jsonl").read_text().splitlines()]
    mc = [r for r in rows if r["task"] == "camelid_toy_mc"]
    gen = [r for r in rows if r["task"] == "camelid_toy_gen"]
    assert len(mc) == len(gen) == 6
    assert "[INST]" in mc[0]["arguments"][0][0]  # the model's own chat template (llama2) framed the prompt
    # lm-eval's numbers are the mean of its per-document scores: the metric is what the samples say
    assert tasks["camelid_toy_mc"]["acc"] == pytest.approx(sum(r["acc"] for r in mc) / 6)
    assert tasks["camelid_toy_gen"]["exact_match (last-number)"] == pytest.approx(
        sum(r["exact_match"] for r in gen) / 6)
    assert sorted(r["target"] for r in gen) == sorted(["5", "9", "8", "12", "12", "10"])
    for r in gen:  # the task's filter scores the answer's last number ("2 + 3 = 5" -> 5)
        numbers = re.findall(r"-?[0-9]+", r["resps"][0][0])
        if numbers:
            assert r["filtered_resps"][0] == numbers[-1]

    # the same tasks on the same model again: the published results, no second run
    assert evaluate("base", [MC, GEN], registry, samples=True, device="cpu").ref == "eval-base@v1"
    # a changed task file is another evaluation
    copy = tmp_path / "tasks"
    import shutil

    shutil.copytree(TASKS, copy)
    (copy / "toy_mc.jsonl").write_text((copy / "toy_mc.jsonl").read_text().splitlines()[0] + "\n")
    again = evaluate("base", [str(copy / "camelid_toy_mc.yaml")], registry, device="cpu",
                     chat_template=False, samples=True)
    assert again.ref == "eval-base@v2" and again.manifest["metrics"]["n_samples"] == {"camelid_toy_mc": 1}
    row = json.loads((again.path / "samples.jsonl").read_text().splitlines()[0])
    assert "[INST]" not in row["arguments"][0][0]  # --no-chat-template: the raw prompt

    # the model card lists the newest results per task
    from camelid.hf.card import eval_section

    card = "\n".join(eval_section(registry, base))
    assert "| camelid_toy_gen | exact_match (last-number) |" in card and "`eval-base@v2`" in card


def test_eval_cli_errors_are_one_line(registry, capsys):
    from camelid.cli import main

    argv = ["eval", "base", "--registry", str(registry.root), "--device", "cpu", "--tasks"]
    assert main([*argv, "missing.yaml"]) == 2
    assert "no such task file" in capsys.readouterr().err
    assert main(["eval", "rm-none", "--registry", str(registry.root), "--tasks", MC]) == 2
    assert "unknown reference" in capsys.readouterr().err
    with pytest.raises(CamelidError, match="at least one"):
        from camelid.eval.lm_eval_cmd import parse_tasks

        parse_tasks([" , "])


def test_eval_cli_prints_the_table(registry, capsys, one_torch_thread):
    from camelid.cli import main

    assert main(["eval", "base", "--registry", str(registry.root), "--device", "cpu", "--tasks", MC,
                 "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "eval-base@v1" and "camelid_toy_mc" in out and "acc" in out
    assert registry.resolve("eval-base").manifest["metrics"]["n_samples"] == {"camelid_toy_mc": 2}
