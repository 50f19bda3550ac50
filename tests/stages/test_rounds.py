"""`camelid round` on the micro profile: two simulated rounds from the 2-layer base, end to end through the CLI.

Checks the chain of policies, that round 2's reward models were trained on their own data plus round 1's and
round 2's pairs (not just declared so), that every artifact records its round, that each round's comparison
covers every earlier policy, and that a rerun finds everything up to date.
"""

from __future__ import annotations

import io
import shutil
from contextlib import redirect_stdout
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _argv(root: Path) -> list[str]:
    # The micro base stands in for an SFT model (the RMs start from it too): mechanics, not quality.
    return ["round", "--config", str(REPO / "pipelines.yaml"), "--profile", "micro", f"registry={root / 'registry'}",
            f"runs_dir={root / 'runs'}", "rounds.policy=base", "rounds.n=2",
            "stages.reward.helpfulness.init=base", "stages.reward.safety.init=base"]


def _main(argv: list[str]) -> str:
    from camelid.cli import main

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(argv) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def rounds(tmp_path_factory, micro_base_registry):
    from camelid.registry import Registry

    root = tmp_path_factory.mktemp("rounds")
    shutil.copytree(micro_base_registry, root / "registry")
    stdout = _main(_argv(root))
    return root, Registry(root / "registry"), stdout


def _inputs(art) -> dict[str, str]:
    return {role: rec["ref"] for role, rec in art.manifest["inputs"].items()}


def test_policies_chain_round_to_round(rounds):
    root, registry, stdout = rounds
    assert stdout.strip().splitlines()[-1] == "base@v1 -> rs-r1@v1 -> rs-r2@v1"
    chain = [(depth, role, art.ref) for depth, role, art in registry.lineage("rs-r2")]
    assert chain[:3] == [(0, "", "rs-r2@v1"), (1, "model", "rs-r1@v1"), (2, "model", "base@v1")]
    assert _inputs(registry.resolve("answers-r2")) == {"policy": "rs-r1@v1"}  # round 2 samples round 1's policy


def test_round_2_reward_models_train_on_their_data_and_both_rounds_pairs(rounds):
    _, registry, _ = rounds
    n1, n2 = (registry.resolve(f"pairs-r{r}").manifest["metrics"]["n_pairs"] for r in (1, 2))
    assert n1 > 0 and n2 > 0
    for objective in ("helpfulness", "safety"):
        rm1, rm2 = registry.resolve(f"rm-{objective}-r1"), registry.resolve(f"rm-{objective}-r2")
        assert _inputs(rm2) == {"init": "base@v1", "pairs_r1": "pairs-r1@v1", "pairs_r2": "pairs-r2@v1"}
        assert [d["path"] for d in rm2.manifest["config"]["data"]] == [
            None, "registry:pairs-r1@v1", "registry:pairs-r2@v1"]
        # what the recipe really loaded: the micro profile's 128 toy pairs plus every round's, none left out
        assert rm1.manifest["metrics"]["data"]["loaded"] == 128 + n1
        assert rm2.manifest["metrics"]["data"]["loaded"] == 128 + n1 + n2
        assert rm1.hash != rm2.hash


def test_every_artifact_records_its_round(rounds):
    _, registry, _ = rounds
    for r in (1, 2):
        for name in ("answers", "pairs", "rm-helpfulness", "rm-safety", "rs-sample", "rs", "compare"):
            assert registry.resolve(f"{name}-r{r}").manifest["config"]["round"] == r, name
    pairs = registry.resolve("pairs-r1")
    assert pairs.kind == "dataset" and pairs.manifest["metrics"]["annotation"] == "simulated"
    assert pairs.manifest["metrics"]["n_annotators"] == 3


def test_each_round_compares_against_every_earlier_policy(rounds):
    _, registry, _ = rounds
    compare = registry.resolve("compare-r2")
    assert compare.manifest["config"]["checkpoints"] == ["base@v1", "rs-r1@v1", "rs-r2@v1"]
    assert _inputs(compare)["reward_safety"] == "rm-safety-r2@v1"


def test_a_rerun_is_up_to_date(rounds):
    root, registry, _ = rounds
    before = {name: registry.versions(name) for name in registry.names()}
    assert _main(_argv(root)).strip().splitlines()[-1] == "base@v1 -> rs-r1@v1 -> rs-r2@v1"
    assert {name: registry.versions(name) for name in registry.names()} == before


def _label_all(db_path: Path, name: str = "ann") -> int:
    """A person labels every pair queued for them: the left answer, better, both safe."""
    from camelid.eval.annotate.db import AnnotationDB

    db = AnnotationDB(db_path)
    user = db.user_for_token(db.add_user(name))
    n = 0
    while (served := db.next_pair(user)) is not None:
        db.submit(user, served.pair_id, preferred="left", strength="better", left_safe=True, right_safe=True)
        n += 1
    return n


def test_human_round_stops_for_labels_then_continues(tmp_path, micro_base_registry, capsys):
    from camelid.cli import main
    from camelid.registry import Registry

    shutil.copytree(micro_base_registry, tmp_path / "registry")
    argv = [*_argv(tmp_path), "rounds.n=1", "rounds.annotation.mode=human"]
    stdout = _main(argv)
    db_path = tmp_path / "runs" / "rounds" / "annotations-r1.sqlite"
    registry = Registry(tmp_path / "registry")
    n = registry.resolve("answers-r1").manifest["metrics"]["pairs"]
    assert f"round 1: {n} pair(s) queued for labelling" in stdout
    assert f"camelid annotate serve --db {db_path}" in stdout and "http://127.0.0.1:8765/" in stdout
    assert "pairs-r1" not in registry.names() and "rm-helpfulness-r1" not in registry.names()
    assert f"round 1: 0 pair(s) queued for labelling ({n} were already queued" in _main(argv)  # a rerun waits

    assert main([*argv, "--continue"]) == 2  # nothing labelled yet: a clear error, not a traceback
    assert "no labelled pairs" in capsys.readouterr().err

    assert _label_all(db_path) == n
    assert _main([*argv, "--continue"]).strip().splitlines()[-1] == "base@v1 -> rs-r1@v1"
    pairs = registry.resolve("pairs-r1")
    assert pairs.manifest["metrics"]["annotation"] == "human" and pairs.manifest["metrics"]["n_pairs"] == n
    assert registry.resolve("rm-safety-r1").manifest["metrics"]["data"]["loaded"] == 128 + n


def test_the_report_has_a_row_per_round_and_rm_accuracy_on_new_pairs(rounds):
    import json

    _, registry, stdout = rounds
    report = registry.resolve("rounds-report")
    assert report.kind == "report" and str(report.path / "report.json") in stdout
    assert _inputs(report)["compare"] == "compare-r2@v1"
    data = json.loads((report.path / "report.json").read_text())
    rows = data["per_round"]
    assert [(row["round"], row["policy"]) for row in rows] == [(0, "base@v1"), (1, "rs-r1@v1"), (2, "rs-r2@v1")]
    compared = registry.resolve("compare-r2").manifest["metrics"]["checkpoints"]
    for row in rows:  # the policy numbers are the last comparison's, checkpoint by checkpoint
        c = compared[row["policy"]]
        assert (row["harmful_refusal"], row["over_refusal"]) == (c["harmful_refusal_rate"], c["over_refusal_rate"])
        assert row["combined_reward"] == c["mean_score"]["combined"]
        assert row["task_accuracy_per_family"] == c["task_accuracy_per_family"]
    answers = registry.resolve("answers-r1").manifest["metrics"]
    assert rows[1]["pairs"]["samples"] == {"a": answers["oracle_a"], "b": answers["oracle_b"]}
    assert set(answers["oracle_a"]) == {"quality", "task_accuracy", "harmful_refusal", "over_refusal"}
    assert "rm_accuracy_on_new_pairs" not in rows[1]  # round 1's pairs came before any round's RM
    new = rows[2]["rm_accuracy_on_new_pairs"]
    n2 = registry.resolve("pairs-r2").manifest["metrics"]["n_pairs"]
    assert new["helpfulness"]["rm"] == "rm-helpfulness-r1@v1" and new["helpfulness"]["n"] == n2
    assert sum(level["n"] for level in new["helpfulness"]["levels"].values()) == n2
    assert 0 <= new["safety"]["n"] <= n2  # the safety RM's drop rule applies
    assert new["helpfulness"]["vs_oracle"]["n"] <= n2  # the oracle's own preference, where it sees a gap
    assert rows[2]["pairs"]["labels_vs_oracle"]["n"] + rows[2]["pairs"]["labels_vs_oracle"]["no_gap"] == n2
    assert (report.path / "rounds.png").stat().st_size > 10_000


def test_the_report_times_every_job_of_a_round_and_sets_the_last_policy_against_the_first(rounds):
    import json

    _, registry, _ = rounds
    data = json.loads((registry.resolve("rounds-report").path / "report.json").read_text())
    for row in data["per_round"][1:]:
        r = row["round"]
        jobs = {name: registry.resolve(f"{name}-r{r}").manifest["metrics"]["seconds"]
                for name in ("answers", "pairs", "rm-helpfulness", "rm-safety", "rs-sample", "rs", "compare")}
        assert row["seconds"] == {**jobs, "total": round(sum(jobs.values()), 1)}
    assert data["seconds_total"] == round(sum(row["seconds"]["total"] for row in data["per_round"][1:]), 1)
    combined = data["last_vs_first"]["combined"]
    assert (combined["a"], combined["b"], combined["judge"]) == ("rs-r2@v1", "rs-r1@v1", "combined")
    stored = registry.resolve("compare-r2").manifest["metrics"]["pairs"]
    pair = next(p for p in stored if (p["a"], p["b"]) == ("rs-r1@v1", "rs-r2@v1"))  # stored from rs-r1's side
    assert combined["win_rate"]["value"] == pytest.approx(1 - pair["win_rate"]["combined"]["value"])
    # The paired mean difference, read from the comparison's per-prompt answers, is the difference of its means.
    means = {row["policy"]: row["combined_reward"] for row in data["per_round"]}
    diff = combined["mean_difference"]
    assert diff["value"] == pytest.approx(means["rs-r2@v1"] - means["rs-r1@v1"], abs=1e-5)
    assert diff["lo"] <= diff["value"] <= diff["hi"]
    assert sum(f["n"] for f in combined["per_family"].values()) == combined["n"]
    assert data["last_vs_start"]["oracle"]["b"] == "base@v1"


def test_rejection_sampling_shows_the_oracles_best_of_k_per_family_next_to_the_rms_picks(rounds):
    import json

    from camelid.data.load import load_records
    from camelid.data.spec import DataSpec
    from camelid.data.toyworld.oracle import score

    _, registry, _ = rounds
    samples = registry.resolve("rs-sample-r1")
    sel, oracle = samples.manifest["metrics"]["selection"], samples.manifest["metrics"]["oracle"]
    assert oracle["all"]["n"] == sel["prompts"]
    assert sum(f["n"] for f in oracle["per_family"].values()) == oracle["all"]["n"]
    for fam in oracle["per_family"].values():
        values = [v for _, v in fam["k_curve"]]
        assert values == sorted(values) and 0 <= fam["selected"] <= 1
    # The picked answers are the kept ones, less those dropped for being empty (never right).
    prompts = load_records(DataSpec.model_validate(samples.manifest["config"]["prompts"]), "prompts").records
    kept = [json.loads(line) for line in (samples.path / "kept.jsonl").read_text().splitlines()]
    right = sum(bool(score(prompts[k["meta"]["prompt_index"]], k["messages"][-1]["content"]).correct) for k in kept)
    assert round(oracle["all"]["selected"] * sel["prompts"]) == right
    report = json.loads((registry.resolve("rounds-report").path / "report.json").read_text())
    assert report["per_round"][1]["rejection_sampling"] == {"ref": samples.ref, "oracle": oracle,
                                                           "k_curve": sel["k_curve"]}


def test_a_missing_starting_policy_says_what_to_do(tmp_path, micro_base_registry, capsys):
    from camelid.cli import main

    shutil.copytree(micro_base_registry, tmp_path / "registry")
    assert main([*_argv(tmp_path), "rounds.policy=sft"]) == 2
    err = capsys.readouterr().err
    assert "rounds.policy='sft', the policy round 1 starts from: unknown reference 'sft'" in err
    assert "camelid run --only init --only sft" in err


def test_rs_then_ppo_updates_the_policy_from_the_rejection_sampled_one(tmp_path, micro_base_registry):
    from camelid.registry import Registry

    shutil.copytree(micro_base_registry, tmp_path / "registry")
    stdout = _main([*_argv(tmp_path), "rounds.n=1", "rounds.policy_update=rs+ppo", "rounds.overrides.ppo.iterations=1"])
    assert stdout.strip().splitlines()[-1] == "base@v1 -> ppo-r1@v1"
    ppo = Registry(tmp_path / "registry").resolve("ppo-r1")
    assert _inputs(ppo) == {"policy": "rs-r1@v1", "reward_helpfulness": "rm-helpfulness-r1@v1",
                            "reward_safety": "rm-safety-r1@v1", "value_init": "rm-helpfulness-r1@v1"}
    assert ppo.manifest["config"]["round"] == 1 and ppo.manifest["config"]["iterations"] == 1


def test_a_schedule_adds_ppo_in_the_last_round_and_keeps_the_earlier_rounds(rounds, tmp_path):
    """Llama 2's schedule [rs, rs+ppo] on the two rs rounds: everything up to rs-r2 is reused, PPO runs on top."""
    from camelid.registry import Registry

    root, _, _ = rounds
    shutil.copytree(root / "registry", tmp_path / "registry")
    registry = Registry(tmp_path / "registry")
    before = {name: registry.versions(name) for name in registry.names()}
    stdout = _main([*_argv(tmp_path), "rounds.policy_update=[rs, rs+ppo]", "rounds.overrides.ppo.iterations=1"])
    assert stdout.strip().splitlines()[-1] == "base@v1 -> rs-r1@v1 -> ppo-r2@v1"
    assert _inputs(registry.resolve("ppo-r2"))["policy"] == "rs-r2@v1"
    assert "ppo-r1" not in registry.names()
    assert registry.resolve("compare-r2").manifest["config"]["checkpoints"] == ["base@v1", "rs-r1@v1", "ppo-r2@v1"]
    for name in ("answers-r2", "pairs-r2", "rm-helpfulness-r2", "rm-safety-r2", "rs-r2"):
        assert registry.versions(name) == before[name], name  # up to date, not redone
