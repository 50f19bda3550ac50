"""PPO checkpoints (round trip of weights, optimizers and RNG; only the newest kept) and early stopping."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import pytest
import torch

from camelid.errors import CamelidError
from camelid.ppo.checkpoint import EarlyStopping, load_checkpoint, load_weights, save_checkpoint
from camelid.ppo.config import PPOConfig
from camelid.ppo.models import ValueModel
from camelid.ppo.update import adamw

CPU = SimpleNamespace(device=torch.device("cpu"), num_processes=1, process_index=0, is_main_process=True,
                      wait_for_everyone=lambda: None)


@pytest.fixture
def trained(tiny):
    """Copies of the tiny policy and value model after one AdamW step (so the optimizers have state)."""
    policy, seqcls = (copy.deepcopy(m) for m in tiny)
    value = ValueModel(seqcls)
    opts = (adamw(policy, PPOConfig(), 1e-2), adamw(value, PPOConfig(), 1e-2))
    ids = torch.tensor([[1, 5, 6, 7]])
    loss = policy(input_ids=ids).logits.mean() + value(ids, torch.ones_like(ids), torch.arange(4)[None]).mean()
    loss.backward()
    for opt in opts:
        opt.step()
    return policy, value, opts


def test_a_checkpoint_restores_weights_optimizers_and_rng(trained, tmp_path):
    policy, value, opts = trained
    kw = {"policy": policy, "value": value, "optimizers": opts}
    save_checkpoint(CPU, tmp_path, 1, **kw, state={"iteration": 1})
    folder = save_checkpoint(CPU, tmp_path, 2, **kw, state={"iteration": 2, "history": [{"kl": 0.5}]})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2"]  # only the newest is kept
    after_save = torch.rand(3)
    saved_policy = {k: v.clone() for k, v in policy.state_dict().items()}
    saved_step = opts[0].state_dict()["state"][0]["step"].clone()
    with torch.no_grad():
        for p in [*policy.parameters(), *value.parameters()]:
            p.add_(1.0)
    opts[0].step()  # moves the optimizer state on

    state = load_checkpoint(CPU, folder, **kw)
    assert state == {"iteration": 2, "history": [{"kl": 0.5}], "world_size": 1}
    assert all(torch.equal(saved_policy[k], v) for k, v in policy.state_dict().items())
    assert torch.equal(opts[0].state_dict()["state"][0]["step"], saved_step)
    assert torch.equal(torch.rand(3), after_save)  # the random stream continues where the save left it


def test_resuming_with_another_number_of_processes_is_refused(trained, tmp_path):
    policy, value, opts = trained
    folder = save_checkpoint(CPU, tmp_path, 1, policy=policy, value=value, optimizers=opts, state={})
    state = json.loads((folder / "state.json").read_text())
    (folder / "state.json").write_text(json.dumps({**state, "world_size": 2}))
    with pytest.raises(CamelidError, match="written by 2 processes; resume with the same number"):
        load_checkpoint(CPU, folder, policy=policy, value=value, optimizers=opts)


def test_weights_of_another_model_are_refused(trained, tmp_path):
    policy, value, _ = trained
    value.model.save_pretrained(tmp_path / "value", safe_serialization=True)
    with pytest.raises(CamelidError, match="does not match the model"):
        load_weights(policy, tmp_path / "value")


class SavedPolicy:
    def __init__(self):
        self.saved = 0

    def save_pretrained(self, folder, safe_serialization):
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_text(str(self.saved))
        self.saved += 1


def test_early_stopping_keeps_the_best_policy_and_stops_after_patience(tmp_path):
    stop, policy = EarlyStopping(2, tmp_path), SavedPolicy()
    assert stop.best_policy is None and stop.state_dict()["best_reward"] is None
    assert not stop.observe(CPU, policy, {"iteration": 1, "reward/combined": 0.5})
    assert not stop.observe(CPU, policy, {"iteration": 2, "reward/combined": 0.7})
    assert not stop.observe(CPU, policy, {"iteration": 3, "reward/combined": 0.6})
    assert stop.observe(CPU, policy, {"iteration": 4, "reward/combined": 0.7})  # not better: 2nd in a row
    assert stop.best_policy == tmp_path / "best" / "policy" and policy.saved == 2
    assert json.loads((tmp_path / "best" / "eval.json").read_text())["iteration"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]  # no temporary folder left

    resumed = EarlyStopping(2, tmp_path)
    resumed.load_state_dict(stop.state_dict())
    assert (resumed.best_reward, resumed.evals_since_best, resumed.best_policy) == (0.7, 2, stop.best_policy)


def test_without_patience_nothing_is_kept_and_the_run_never_stops(tmp_path):
    stop, policy = EarlyStopping(None, tmp_path), SavedPolicy()
    assert not any(stop.observe(CPU, policy, {"reward/combined": r}) for r in (1.0, 0.0, 0.0, 0.0))
    assert policy.saved == 0 and stop.best_policy is None and not any(tmp_path.iterdir())
