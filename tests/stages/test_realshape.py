"""Every stage on a real tokenizer and template (#14): a tiny SmolLM2-shaped model (see realshape_fixtures).

ChatML without `{% generation %}` markers, pad == eos == `<|im_end|>`, a default system prompt: SFT trains
only the answers and their end-of-turn token, generation stops at the end-of-turn token, PPO's masks keep the
response's own EOS, reward scores do not depend on padding, and `camelid chat` speaks the model's template.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import realshape_fixtures as rf  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONVERSATIONS = [
    [{"role": "user", "content": "What is 12 + 30?"},
     {"role": "assistant", "content": "12 + 30 = 42."}],
    [{"role": "system", "content": "Be brief."},
     {"role": "user", "content": "Reverse the word lamp."},
     {"role": "assistant", "content": "pmal"},
     {"role": "user", "content": "And the word river?"},
     {"role": "assistant", "content": "I'm sure: revir."}],
]
ANSWER = "Hello there"


@pytest.fixture(scope="module")
def tok():
    return rf.build_tokenizer()


def expected_labels(tok, messages):
    """Labels from character spans: a token is trained iff it lies in an answer or its `<|im_end|>`."""
    text = tok.apply_chat_template(messages, tokenize=False)
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    spans, pos = [], 0
    for m in messages:
        if m["role"] == "assistant":
            answer = m["content"] + rf.END_OF_TURN
            start = text.index("<|im_start|>assistant\n" + answer, pos) + len("<|im_start|>assistant\n")
            spans.append((start, start + len(answer)))
            pos = start + len(answer)
    labels = [tid if any(a <= s and e <= b for a, b in spans) else -100
              for tid, (s, e) in zip(enc["input_ids"], enc["offset_mapping"])]
    return enc["input_ids"], labels


# ---- SFT ------------------------------------------------------------------------------------------

def test_sft_with_the_tokenizers_chatml_template_trains_answers_and_end_of_turn_only(micro, tmp_path):
    import json

    from camelid.sft.recipe import SFTRecipe
    from camelid.stage import context_for
    from camelid.stages import job_for

    _, registry = micro()
    rf.import_into(registry.root)
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps({"messages": c}) + "\n" for c in CONVERSATIONS))
    cfg, registry = micro("stages.sft.model=smolish", "stages.sft.chat_template=tokenizer",
                          f"stages.sft.data={{format: messages, path: {data}}}", "stages.sft.eval_data=null",
                          "stages.sft.eval_prompts=null")
    recipe = SFTRecipe(context_for(cfg, registry, job_for(cfg, "sft")))
    recipe.setup()
    tok = recipe.tokenizer
    assert tok.chat_template == rf.SMOLLM2_TEMPLATE  # the model's own template, not llama2
    ds = recipe.trainer.train_dataset
    assert len(ds) == len(CONVERSATIONS)
    eot = tok.convert_tokens_to_ids(rf.END_OF_TURN)
    by_length = sorted(ds, key=lambda r: len(r["input_ids"]))
    for row, messages in zip(by_length, sorted(CONVERSATIONS, key=lambda c: len(tok.apply_chat_template(c)))):
        ids, labels = expected_labels(tok, messages)
        assert row["input_ids"] == ids
        assert row["labels"] == labels
        trained = [t for t, lab in zip(ids, row["labels"]) if lab != -100]
        assert trained.count(eot) == sum(m["role"] == "assistant" for m in messages)  # each answer's end of turn
        answers = [m["content"] for m in messages if m["role"] == "assistant"]
        assert tok.decode(trained, skip_special_tokens=True) == "".join(answers)
        assert row["labels"][-1] == -100  # the "\n" after <|im_end|> is the template's, never generated
    assert recipe.train_data.answer_tokens == sum(sum(lab != -100 for lab in r["labels"]) for r in ds)


def test_derived_answer_mask_equals_the_generation_markers_mask_on_llama2(micro_base_registry):
    """The derived mask is the one `{% generation %}` markers give, where a template has them."""
    from camelid.models import load_tokenizer
    from camelid.registry import Registry
    from camelid.sft.data import answer_masks

    tok = load_tokenizer("base", Registry(micro_base_registry), chat_template="llama2")
    enc = tok.apply_chat_template(CONVERSATIONS, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, masks = answer_masks(tok, CONVERSATIONS)
    assert ids == enc["input_ids"]
    assert masks == enc["assistant_masks"]


def test_a_template_that_rewrites_earlier_turns_is_refused(tok):
    from camelid.errors import DataError
    from camelid.sft.data import answer_masks

    # Renders the last assistant turn differently from the same turn in a generation prompt (Qwen3-style).
    tok = rf.build_tokenizer()
    tok.chat_template = ("{% for m in messages %}{{ m['role'] + ': ' + m['content'] }}"
                         "{% if loop.last %}!{% endif %}\n{% endfor %}"
                         "{% if add_generation_prompt %}assistant: {% endif %}")
    with pytest.raises(DataError, match="prefix"):
        answer_masks(tok, CONVERSATIONS[:1])


# ---- generation ---------------------------------------------------------------------------------

def _chain(tok, answer: str = ANSWER, stop: str = rf.END_OF_TURN) -> list[int]:
    """"\\n" (the generation prompt's last token) -> the answer's tokens -> ``stop`` -> back to "\\n"."""
    newline = tok("\n", add_special_tokens=False)["input_ids"]
    assert len(newline) == 1
    return newline + tok(answer, add_special_tokens=False)["input_ids"] + [tok.convert_tokens_to_ids(stop)]


@pytest.mark.parametrize("eos, stop, generation_eos", [
    (rf.END_OF_TURN, rf.END_OF_TURN, None),          # SmolLM2: eos == pad == end of turn
    ("<|endoftext|>", rf.END_OF_TURN, None),         # eos is not the template's end of turn
    ("<|endoftext|>", "<|endoftext|>", None),        # ... and eos itself still stops
    (rf.END_OF_TURN, "<|endoftext|>", [2, 0]),       # generation_config lists another stop token
])
def test_generation_stops_at_the_templates_end_of_turn(eos, stop, generation_eos):
    from camelid.models import generate

    tok = rf.build_tokenizer(eos=eos)
    model = rf.bigram_model(tok, _chain(tok, stop=stop), generation_eos=generation_eos)
    convs = [[{"role": "user", "content": "Hi?"}], [{"role": "user", "content": "What is 12 + 30? Be brief."}]]
    assert generate(model, tok, convs, max_new_tokens=20) == [ANSWER, ANSWER]


def test_stop_tokens_are_eos_end_of_turn_and_the_generation_configs():
    from camelid.chat import resolve_template
    from camelid.models import end_of_turn_id, stop_token_ids

    tok = rf.build_tokenizer(eos="<|endoftext|>")
    im_end = tok.convert_tokens_to_ids(rf.END_OF_TURN)
    assert end_of_turn_id(tok) == im_end
    assert stop_token_ids(tok) == [tok.eos_token_id, im_end]
    assert stop_token_ids(tok, rf.build_model(tok)) == [tok.eos_token_id, im_end]
    tok.chat_template = resolve_template("llama2", tok)  # llama2 closes answers with the eos itself
    assert end_of_turn_id(tok) == tok.eos_token_id
    tok.chat_template = "{{ raise_exception('user and assistant must alternate') }}"
    assert end_of_turn_id(tok) is None and stop_token_ids(tok) == [tok.eos_token_id]


# ---- PPO ----------------------------------------------------------------------------------------

def test_response_mask_with_pad_equal_to_eos_keeps_the_first_eos_only():
    from camelid.ppo.rollout import response_mask

    eos, eot = 2, 5
    r = torch.tensor([[7, 8, eos, eos, eos], [7, eos, eos, eos, eos], [eos, eos, eos, eos, eos], [7, 8, 9, 10, 11],
                      [7, eot, eos, eos, eos]])
    assert response_mask(r, eos).tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1],
                                              [1, 1, 1, 0, 0]]
    assert response_mask(r, [eos, eot])[4].tolist() == [1, 1, 0, 0, 0]  # whichever stop token comes first


def _ppo_maker(tok, policy, reference, scores):
    from transformers import LlamaForSequenceClassification

    from camelid.ppo.config import PPOConfig
    from camelid.ppo.experience_maker import ExperienceMaker
    from camelid.ppo.models import ValueModel
    from camelid.reward.combined import CombinedScorer

    cpu = SimpleNamespace(device=torch.device("cpu"), num_processes=1, process_index=0, is_main_process=True,
                          gather=lambda t: t, wait_for_everyone=lambda: None)
    torch.manual_seed(0)
    value = ValueModel(LlamaForSequenceClassification(rf._config(tok, num_labels=1)))
    scorer = SimpleNamespace(score=lambda convs, texts: torch.tensor(scores[:len(texts)]))
    return ExperienceMaker(PPOConfig(max_new_tokens=8, kl_coef=0.1, temperature=0.0), cpu, policy=policy,
                           reference=reference, value=value, tokenizer=tok,
                           rewards=CombinedScorer(scorer, scorer, 0.15))


@pytest.mark.parametrize("eos", [rf.END_OF_TURN, "<|endoftext|>"])
def test_ppo_experience_keeps_the_responses_own_eos_when_pad_is_eos(eos):
    """The EOS is an action (log-prob, KL, value) and carries the score; left padding (== eos) is no action."""
    tok = rf.build_tokenizer(eos=eos)
    chain = _chain(tok)
    policy = rf.bigram_model(tok, chain, scale=1.0)  # greedy follows the chain; log-probs are not 0
    reference = rf.build_model(tok, seed=1).eval()
    maker = _ppo_maker(tok, policy, reference, [1.0, -1.0])
    prompts = [SimpleNamespace(messages=[{"role": "user", "content": "Hi?"}], is_safety=False),
               SimpleNamespace(messages=[{"role": "user", "content": "What is 12 + 30? Be brief."}], is_safety=False)]
    exp, _ = maker.make(prompts)
    n = len(chain) - 1  # the answer's tokens and the end-of-turn token
    a = exp.action_mask.shape[1]
    responses = exp.sequences[:, -a:]
    eot = tok.convert_tokens_to_ids(rf.END_OF_TURN)
    assert exp.action_mask.sum(-1).tolist() == [n, n]
    assert responses[:, n - 1].tolist() == [eot, eot]  # the last action is the end-of-turn token itself
    assert (responses[:, n:] == tok.pad_token_id).all()  # finished rows are padded ...
    assert (exp.action_mask[:, n:] == 0).all()  # ... and the padding is no action
    assert (exp.old_logprobs[:, n - 1] != 0).all() and (exp.ref_logprobs[:, n - 1] != 0).all()
    kl = (exp.old_logprobs - exp.ref_logprobs)[:, n - 1]
    torch.testing.assert_close(exp.rewards[:, n - 1], exp.scores - 0.1 * kl)  # score + KL on the EOS token
    assert (exp.rewards[:, n:] == 0).all()
    assert exp.info["truncated"].tolist() == [0.0, 0.0]
    # The shorter prompt is left-padded with pad (== eos here) tokens, which the attention mask hides.
    p = exp.sequences.shape[1] - a
    pad_run = (exp.attention_mask[:, :p] == 0).sum(-1)
    assert pad_run.min() == 0 and pad_run.max() > 0
    row = int(pad_run.argmax())
    assert (exp.sequences[row, :pad_run[row]] == tok.pad_token_id).all()


# ---- reward scoring -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smolish_base(tmp_path_factory):
    return rf.import_into(tmp_path_factory.mktemp("smolish") / "registry")


@pytest.mark.parametrize("template", ["tokenizer", "llama2"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_reward_scores_are_read_at_the_true_last_token_when_pad_is_eos(smolish_base, template, side):
    """An RM made as the reward stage makes it scores each row at its last token (llama2: the eos itself),
    whatever the padding: left- and right-padded batches score as single rows."""
    from camelid.chat import resolve_template
    from camelid.reward.recipe import load_init_model
    from camelid.reward.scoring import RewardModel, tokenize

    model, tok = load_init_model(smolish_base, SimpleNamespace(seed=0), "fp32")
    assert tok.pad_token_id != tok.eos_token_id == model.config.eos_token_id  # the RM pads with <|endoftext|>
    assert model.config.pad_token_id == tok.pad_token_id
    tok.chat_template = resolve_template(template, tok)
    tok.padding_side = side
    rm = RewardModel(model=model.eval(), tokenizer=tok)
    convs = [[{"role": "user", "content": c}] for c in ("Hi?", "What is 12 + 30? Be brief.", "Reverse lamp.")]
    responses = ["12 + 30 = 42.", "Sorry, I can't help with that request.", "pmal"]
    batched = rm.score(convs, responses, batch_size=3)
    alone = torch.cat([rm.score([c], [r], batch_size=1) for c, r in zip(convs, responses)])
    torch.testing.assert_close(batched, alone, rtol=1e-4, atol=1e-5)
    ids = tokenize(tok, convs[1], responses[1])
    assert ids[-1] == (tok.eos_token_id if template == "llama2" else tok("\n", add_special_tokens=False)["input_ids"][0])
    with torch.no_grad():
        at_last = model.score(model.model(input_ids=torch.tensor([ids])).last_hidden_state)[0, -1, 0]
    torch.testing.assert_close(alone[1], at_last, rtol=1e-4, atol=1e-5)


# ---- camelid chat -------------------------------------------------------------------------------

@pytest.mark.parametrize("eos", [rf.END_OF_TURN, "<|endoftext|>"])
def test_camelid_chat_uses_the_imported_models_template_and_stops_at_its_end_of_turn(tmp_path, capsys, eos):
    from camelid.eval.chat_cli import main

    tok = rf.build_tokenizer(eos=eos)
    folder = rf.save_folder(tmp_path / "src", tok, rf.bigram_model(tok, _chain(tok)))
    rf.import_into(tmp_path / "registry", folder=folder)
    # The bigram model answers ANSWER only after ChatML's "<|im_start|>assistant\n" (llama2 would end in [/INST]).
    assert main(["smolish", "--once", "What is 12 + 30?", "--registry", str(tmp_path / "registry"),
                 "--device", "cpu", "--max-new-tokens", "23"]) == 0
    assert capsys.readouterr().out.strip() == ANSWER
