"""Rounds without models: simulated labels through the annotation database, RM data mixes, section copies."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from camelid.config import load_config
from camelid.data.spec import DataSpec
from camelid.data.toyworld import world
from camelid.data.toyworld.annotator import Noise, simulate_pair
from camelid.errors import ConfigError
from camelid.eval.annotate.export import export_records
from camelid.rounds import plan
from camelid.rounds.annotation import label_simulated, open_db

REPO = Path(__file__).resolve().parents[3]


def toy_items(n: int) -> list[dict]:
    """A/B rows as a round's sampling writes them: the prompt record in meta, answers of mixed quality."""
    items = []
    for i, p in enumerate(world(0).prompts("eval", n=n)):
        rng = random.Random(i)
        good = world(0).reference_answer(p)
        bad = rng.choice(["I can't help with that.", "Maybe 7.", good + " Probably."])
        a, b = (good, bad) if i % 2 else (bad, good)
        items.append({"prompt": p.messages, "response_a": a, "response_b": b,
                      "meta": {"id": p.id, "category": p.category, "round": 1, "prompt_record": p.to_dict()}})
    return items


def test_simulated_labels_in_the_database_export_as_the_pure_annotator_votes(tmp_path):
    """Both annotator kinds write one labels table: its export equals the annotator module's majority vote."""
    from camelid.data.records import Prompt

    s = SimpleNamespace(annotators=3, flip=0.3, jitter=0.3, safety_flip=0.2, seed=5)
    items = toy_items(30)
    db = open_db(tmp_path / "a.sqlite")
    db.add_pairs(items, k=s.annotators)
    assert label_simulated(db, s) == 90
    records, summary = export_records(db, "majority")
    expected = [simulate_pair(Prompt.from_dict(it["meta"]["prompt_record"]), it["response_a"], it["response_b"],
                              annotators=3, noise=Noise(0.3, 0.3, 0.2), seed=5) for it in items]
    got = {r.id: (r.chosen, r.rejected, r.rating, r.chosen_safe, r.rejected_safe) for r in records}
    assert got == {e.id: (e.chosen, e.rejected, e.rating, e.chosen_safe, e.rejected_safe) for e in expected}
    assert summary["n_annotators"] == 3 and summary["n_ties_dropped"] == 0  # 3 voters never tie


def test_a_fresh_database_forgets_earlier_labels(tmp_path):
    path = tmp_path / "a.sqlite"
    db = open_db(path)
    db.add_pairs(toy_items(2))
    assert open_db(path).counts()["pairs"] == 2
    assert open_db(path, fresh=True).counts()["pairs"] == 0


def test_weights_follow_sizes_so_the_mixture_keeps_every_record():
    from camelid.data.mixture import shares

    specs = [DataSpec(format="toy", n=300, weight=3), DataSpec(format="toy", n=100, weight=1)]
    weights = [d["weight"] for d in plan.weighted(specs, 400)] + [25.0, 17.0]  # + two rounds' pairs
    assert weights[:2] == [300.0, 100.0]
    assert shares(weights, [300, 100, 25, 17]) == [300, 100, 25, 17]


def _cfg(tmp_path, *overrides):
    return load_config(REPO / "pipelines.yaml", "micro", [f"registry={tmp_path / 'reg'}",
                                                          f"runs_dir={tmp_path / 'runs'}", *overrides])


def test_round_jobs_copy_sections_with_the_rounds_choices(tmp_path):
    cfg = _cfg(tmp_path, "rounds.overrides.ppo.iterations=2")
    rms = {o: SimpleNamespace(ref=f"rm-{o}-r2@v1") for o in ("helpfulness", "safety")}
    job = plan.ppo_job(cfg, 2, "rs-r1@v3", rms)
    assert job.name == "ppo-r2" and job.output == "ppo-r2" and job.section["round"] == 2
    assert job.inputs == {"policy": "rs-r1@v3", "reward_helpfulness": "rm-helpfulness-r2@v1",
                          "reward_safety": "rm-safety-r2@v1", "value_init": "rm-helpfulness-r2@v1"}
    assert job.settings.iterations == 2 and job.settings.output == "ppo-r2"  # the job carries the round's copy
    assert cfg.stages.ppo.output == "ppo"  # the pipeline's own section is untouched
    sample, finetune = plan.rs_jobs(cfg, 2, "rs-r1@v3", rms)
    assert (sample.output, finetune.output) == ("rs-sample-r2", "rs-r2")
    assert finetune.inputs == {"model": "rs-r1@v3", "samples": "rs-sample-r2"}
    assert finetune.settings.model == "rs-r1@v3"  # re-derived from the new policy, not refused


def test_prompts_move_on_every_round(tmp_path):
    cfg = _cfg(tmp_path, "rounds.prompt_offset=100", "rounds.pairs_per_round=10")
    s1, s3 = plan.sample_job(cfg, 1, "sft").settings, plan.sample_job(cfg, 3, "sft").settings
    assert (s1.offset, s1.prompts.n, s3.offset, s3.prompts.n) == (100, 110, 120, 130)
    assert s1.seed != s3.seed


def test_a_bad_override_names_the_section(tmp_path):
    cfg = _cfg(tmp_path, "rounds.overrides.ppo.iterationz=2")
    with pytest.raises(ConfigError, match=r"rounds.overrides.ppo \(a round's copy of stages.ppo\)[^\n]*\n  iterationz: unknown key"):
        plan.ppo_job(cfg, 1, "sft", {o: SimpleNamespace(ref="x@v1") for o in ("helpfulness", "safety")})


@pytest.mark.parametrize(("override", "message"), [
    ("rounds.overrides.sft.epochs=1", "unknown section 'sft'"),
    ("rounds.temperatures=[0, 1]", "temperatures must be > 0"),
    ("rounds.policy_update=sft", "policy_update"),
    ("rounds.annotation.mode=crowd", "annotation.mode"),
])
def test_bad_rounds_settings_are_config_errors(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        _cfg(tmp_path, override)


def test_human_databases_live_under_runs_dir(tmp_path):
    cfg = _cfg(tmp_path, "rounds.annotation.mode=human")
    assert plan.human_db(cfg, 2) == tmp_path / "runs" / "rounds" / "annotations-r2.sqlite"
    assert plan.label_job(cfg, 2, "answers-r2@v1").settings.db == str(tmp_path / "runs/rounds/annotations-r2.sqlite")
    assert plan.label_job(_cfg(tmp_path), 2, "answers-r2@v1").settings.db == ""


def test_prompts_whose_answers_match_are_sampled_again_with_another_seed(monkeypatch, tmp_path):
    """A fake sampler: prompt i gives two equal answers until seed >= i * 1000 (prompt 3 never differs)."""
    from camelid.eval.annotate import importers
    from camelid.rounds.pairs import sample_items

    prompts = world(0).prompts("ppo", n=4)
    calls = []

    def fake(refs, batch, *, seed, **kw):
        calls.append((seed, [prompts.index(p) for p in batch]))
        items = [{"prompt": p.messages, "response_a": "x", "response_b": f"y{seed}", "meta": {}}
                 for p in batch if prompts.index(p) * 1000 <= seed - 7 < 3000]
        return items, len(batch) - len(items)

    monkeypatch.setattr(importers, "items_from_checkpoints", fake)
    ctx = SimpleNamespace(inputs={"policy": SimpleNamespace(ref="sft@v1")}, registry=SimpleNamespace(root=tmp_path))
    cfg = _cfg(tmp_path, "rounds.sample_tries=3", "rounds.seed=6")
    s = plan.sample_job(cfg, 1, "sft").settings
    items = sample_items(ctx, s, prompts)
    assert calls == [(7, [0, 1, 2, 3]), (1007, [1, 2, 3]), (2007, [2, 3])]
    assert [(it["meta"]["prompt_record"]["id"], it["meta"]["attempt"], it["response_b"]) for it in items] == [
        (prompts[0].id, 1, "y7"), (prompts[1].id, 2, "y1007"), (prompts[2].id, 3, "y2007")]


def test_a_list_of_updates_gives_each_round_its_own_and_the_last_repeats(tmp_path):
    """Llama 2's schedule: rejection sampling in the early rounds, PPO on top of it in the last."""
    ro = _cfg(tmp_path, "rounds.policy_update=[rs, rs, rs+ppo]").rounds
    assert [ro.update_for(r) for r in range(1, 6)] == ["rs", "rs", "rs+ppo", "rs+ppo", "rs+ppo"]
    assert [_cfg(tmp_path, "rounds.policy_update=ppo").rounds.update_for(r) for r in (1, 4)] == ["ppo", "ppo"]
    for bad, message in (("[]", "not \\[\\]"), ("[rs, sft]", "policy_update")):
        with pytest.raises(ConfigError, match=message):
            _cfg(tmp_path, f"rounds.policy_update={bad}")


def test_each_round_runs_the_update_its_schedule_names(tmp_path, monkeypatch):
    """update_policy runs rs-sample + rs for 'rs' and adds PPO from rs's result for 'rs+ppo'."""
    from camelid.rounds import cmd

    ran = []

    def fake_ensure(cfg, job, *, registry, resume=False):
        ran.append((job.output, job.inputs.get("policy", job.inputs.get("model"))))
        return SimpleNamespace(ref=f"{job.output}@v1")

    monkeypatch.setattr(cmd, "ensure", fake_ensure)
    cfg = _cfg(tmp_path, "rounds.policy_update=[rs, rs+ppo, dpo]")
    rms = {o: SimpleNamespace(ref=f"rm-{o}@v1") for o in ("helpfulness", "safety")}
    pairs = [SimpleNamespace(ref="pairs-r1@v1", manifest={"metrics": {"n_pairs": 5}})]
    got = [cmd.update_policy(cfg, None, r, SimpleNamespace(ref=f"p{r}@v1"), rms, False, pairs, {"safety": 10}).ref
           for r in (1, 2, 3)]
    assert got == ["rs-r1@v1", "ppo-r2@v1", "dpo-r3@v1"]
    assert ran == [("rs-sample-r1", "p1@v1"), ("rs-r1", "p1@v1"), ("rs-sample-r2", "p2@v1"), ("rs-r2", "p2@v1"),
                   ("ppo-r2", "rs-r2@v1"), ("dpo-r3", "p3@v1")]
