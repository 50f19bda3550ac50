"""`camelid round` with rounds.policy_update=dpo on the micro profile: one simulated round from the 2-layer base.

Checks that the round's policy is dpo-r1, trained by the dpo stage from the round's starting policy on the pairs
the round's safety RM trained on (its own data + pairs-r1, counted by what the recipe loaded), that its lineage,
the comparison and the report name it, and that the next round's first job samples from it.
"""

from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stdout
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _overrides(root: Path) -> list[str]:
    # The micro base stands in for an SFT model (the RMs start from it too): mechanics, not quality.
    return [f"registry={root / 'registry'}", f"runs_dir={root / 'runs'}", "rounds.policy=base", "rounds.n=1",
            "rounds.policy_update=dpo", "stages.reward.helpfulness.init=base", "stages.reward.safety.init=base"]


@pytest.fixture(scope="module")
def dpo_round(tmp_path_factory, micro_base_registry):
    from camelid.cli import main
    from camelid.registry import Registry

    root = tmp_path_factory.mktemp("rounds-dpo")
    shutil.copytree(micro_base_registry, root / "registry")
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["round", "--config", str(REPO / "pipelines.yaml"), "--profile", "micro",
                     *_overrides(root)]) == 0
    return root, Registry(root / "registry"), out.getvalue()


def _inputs(art) -> dict[str, str]:
    return {role: rec["ref"] for role, rec in art.manifest["inputs"].items()}


def test_the_round_publishes_a_dpo_policy_from_the_start(dpo_round):
    _, registry, stdout = dpo_round
    assert stdout.strip().splitlines()[-1] == "base@v1 -> dpo-r1@v1"
    policy = registry.resolve("dpo-r1")
    assert policy.kind == "dpo" and policy.manifest["config"]["round"] == 1
    assert _inputs(policy) == {"policy": "base@v1", "pairs_r1": "pairs-r1@v1"}
    assert (policy.path / "model" / "config.json").is_file()
    chain = [(depth, role, art.ref) for depth, role, art in registry.lineage("dpo-r1")]
    assert (1, "policy", "base@v1") in chain and (1, "pairs_r1", "pairs-r1@v1") in chain
    assert not set(registry.names()) & {"rs-r1", "ppo-r1", "rs-sample-r1"}  # dpo replaces them, not adds to them
    metrics = policy.manifest["metrics"]
    assert metrics["steps"] == 4 and metrics["train_loss_first"] is not None


def test_dpo_trains_on_the_pairs_the_safety_rm_trains_on(dpo_round):
    _, registry, _ = dpo_round
    policy, rm = registry.resolve("dpo-r1"), registry.resolve("rm-safety-r1")
    assert policy.manifest["config"]["data"] == rm.manifest["config"]["data"]
    assert [d["path"] for d in policy.manifest["config"]["data"]] == [None, "registry:pairs-r1@v1"]
    n1 = registry.resolve("pairs-r1").manifest["metrics"]["n_pairs"]
    assert n1 > 0
    # what both recipes really loaded: the micro safety RM's 128 toy pairs plus the round's, none left out
    assert policy.manifest["metrics"]["data"]["loaded"] == rm.manifest["metrics"]["data"]["loaded"] == 128 + n1


def test_the_comparison_and_report_name_the_dpo_policy(dpo_round):
    _, registry, _ = dpo_round
    compare = registry.resolve("compare-r1")
    assert compare.manifest["config"]["checkpoints"] == ["base@v1", "dpo-r1@v1"]
    report = json.loads((registry.resolve("rounds-report").path / "report.json").read_text())
    row = report["per_round"][1]
    assert row["policy"] == "dpo-r1@v1" and row["seconds"]["dpo"] > 0 and "rejection_sampling" not in row


def test_the_next_round_samples_from_the_dpo_policy(dpo_round):
    from camelid.config import load_config
    from camelid.rounds import plan
    from camelid.stage import ensure

    root, registry, _ = dpo_round
    cfg = load_config(REPO / "pipelines.yaml", "micro", [*_overrides(root), "rounds.n=2"])
    answers = ensure(cfg, plan.sample_job(cfg, 2, registry.resolve("dpo-r1").ref), registry=registry)
    assert answers.name == "answers-r2" and _inputs(answers) == {"policy": "dpo-r1@v1"}
    assert answers.manifest["metrics"]["pairs"] > 0
