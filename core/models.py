"""Models and tokenizers: build the toy world's tiny Llama, load any ref, generate in batches."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from camelid.chat import resolve_template
from camelid.errors import CamelidError
from camelid.registry import Artifact, Registry

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from camelid.config import ToyBaseConfig

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]
# Whole tokens for the chat markup: a tiny model should not spend capacity spelling "[/INST]".
CHAT_TOKENS = ["[INST]", "[/INST]", "<<SYS>>", "<</SYS>>"]


def device_for(setting: str = "auto") -> torch.device:
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise CamelidError("device 'cuda' was asked for but no CUDA GPU is visible; use device=auto or cpu")
        return torch.device("cuda")
    return torch.device("cpu")


def pick_precision(setting: str, device: torch.device | None = None) -> str:
    """'auto' -> bf16 on GPUs that support it, fp32 on CPU (TRL defaults to bf16, which is slow on CPU)."""
    device = device or device_for("auto")
    if setting != "auto":
        if setting in ("bf16", "fp16") and device.type == "cpu":
            raise CamelidError(f"precision {setting} needs a GPU; on CPU use precision=fp32 or auto")
        return setting
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def torch_dtype(precision: str) -> torch.dtype:
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


# ---- the toy world's tokenizer and tiny Llama ---------------------------------------------------

def train_tokenizer(lines: Iterable[str], vocab_size: int) -> PreTrainedTokenizerBase:
    """Byte-level BPE with single-digit splitting (so arithmetic sees digits), Llama 2 chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS + CHAT_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(lines, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", padding_side="right")
    fast.chat_template = resolve_template("llama2")
    return fast


def build_tiny_llama(cfg: ToyBaseConfig, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(cfg.seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_heads,
        max_position_embeddings=cfg.max_position_embeddings, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id,
                                               eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    return model


# ---- loading any ref ------------------------------------------------------------------------------

@contextlib.contextmanager
def hub_errors(artifact: Artifact):
    """Turn huggingface_hub's deep tracebacks into one line naming the id and the way out."""
    try:
        yield
    except (OSError, ValueError) as e:
        if artifact.external == "hub":
            offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") else ""
            raise CamelidError(
                f"could not load {artifact.name!r} from the Hugging Face Hub{offline}: {str(e).splitlines()[0]}. "
                "Check the id and your network/login, or download it and pass a local path (./path/to/model)."
            ) from None
        raise CamelidError(f"could not load model {artifact.ref!r} from {artifact.model_path}: "
                           f"{str(e).splitlines()[0]}") from None


def resolve_model(ref: str, registry: Registry) -> Artifact:
    art = registry.resolve(ref)
    if not art.external and art.kind == "dataset":
        raise CamelidError(f"{art.ref} is a dataset artifact, not a model")
    return art


def load_tokenizer(ref: str | Artifact, registry: Registry | None = None, *, chat_template: str | None = None,
                   trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """Tokenizer of a ref, with a pad token and (when asked, or when it has none) a chat template."""
    from transformers import AutoTokenizer

    art = ref if isinstance(ref, Artifact) else resolve_model(ref, registry or Registry("./registry"))
    with hub_errors(art):
        tok = AutoTokenizer.from_pretrained(art.model_path, trust_remote_code=trust_remote_code)
    if tok.pad_token is None:  # Llama tokenizers ship without one
        tok.pad_token = tok.unk_token or tok.eos_token
    if chat_template is not None or not getattr(tok, "chat_template", None):
        tok.chat_template = resolve_template(chat_template or "llama2", tok)
    return tok


def load_causal_lm(ref: str | Artifact, registry: Registry | None = None, *, precision: str = "auto",
                   device: str = "auto", trust_remote_code: bool = False, chat_template: str | None = None,
                   attn_implementation: str | None = None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load (model, tokenizer) for a registry ref, local path or Hub id; weights via safetensors only.

    ``attn_implementation`` picks the attention kernel (None: transformers' default, sdpa).
    """
    from transformers import AutoModelForCausalLM

    art = ref if isinstance(ref, Artifact) else resolve_model(ref, registry or Registry("./registry"))
    dev = device_for(device)
    dtype = torch_dtype(pick_precision(precision, dev))
    tok = load_tokenizer(art, chat_template=chat_template, trust_remote_code=trust_remote_code)
    with hub_errors(art):
        extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
        try:
            model = AutoModelForCausalLM.from_pretrained(art.model_path, dtype=dtype, use_safetensors=True,
                                                         trust_remote_code=trust_remote_code, **extra)
        except (ImportError, ValueError) as e:
            if attn_implementation and ("attn_implementation" in str(e) or "Attention" in str(e)):
                raise CamelidError(
                    f"attn_implementation={attn_implementation!r} cannot be used for {art.ref}: "
                    f"{str(e).splitlines()[0][:300]} Set the top-level attn_implementation to null (sdpa) or another kernel, "
                    "or install its package.") from None
            raise
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    return model.to(dev), tok


def process_state(device: str = "auto"):
    """This process's place in the launch: accelerate's shared PartialState (one process when not launched).

    cpu=True on CPU: without it each process of an `accelerate launch` sees world size 1 (STACK trap). Every
    stage asks for the state this way, so whichever creates it first creates the same one.
    """
    from accelerate import PartialState

    return PartialState(cpu=device_for(device).type == "cpu")


def is_sharded(trainer) -> bool:
    """Whether each process of a transformers Trainer holds only a shard of the weights (FSDP, ZeRO-3)."""
    plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
    return bool(trainer.is_fsdp_enabled
                or (trainer.is_deepspeed_enabled and plugin is not None and plugin.zero_stage == 3))


def gather_full_model(trainer, auto_class):
    """The trained model as one plain (unsharded) copy on the main process, None on the others.

    A collective: every process must call it. Without sharding it is the trainer's own model.
    ``auto_class`` (e.g. AutoModelForSequenceClassification) rebuilds the architecture: FSDP2 swaps the
    model's class for a generated subclass, so ``type(trainer.model)`` is not the one to instantiate.
    """
    if not is_sharded(trainer):
        return trainer.model
    state_dict = trainer.accelerator.get_state_dict(trainer.model_wrapped)  # full on the main process only
    if not trainer.accelerator.is_main_process:
        return None
    dtype = next(iter(state_dict.values())).dtype
    model = auto_class.from_config(trainer.model.config, dtype=dtype)
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    if unexpected or [k for k in missing if "lm_head" not in k]:  # a tied lm_head is not in the state dict
        raise CamelidError(f"gathering the sharded model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.tie_weights()
    return model.to(trainer.args.device).eval()


# ---- generation -----------------------------------------------------------------------------------

_PROBE = "camelid-probe-answer"


def end_of_turn_id(tokenizer) -> int | None:
    """The special token the chat template closes an assistant turn with (ChatML's <|im_end|>, llama2's </s>).

    Found by rendering a probe answer and reading the first special token after it; None when the template
    cannot render a plain user/assistant exchange or closes turns with ordinary text.
    """
    try:
        text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"},
                                              {"role": "assistant", "content": _PROBE}], tokenize=False)
    except Exception:  # noqa: BLE001 - a template may raise on anything (raise_exception); then there is none
        return None
    if _PROBE not in text:
        return None
    after = tokenizer(text[text.rindex(_PROBE) + len(_PROBE):], add_special_tokens=False)["input_ids"]
    special = set(tokenizer.all_special_ids) | {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    return next((i for i in after if i in special), None)


def stop_token_ids(tokenizer, model=None) -> list[int]:
    """Every token that ends an answer: the tokenizer's eos, the template's end-of-turn token, and the model's
    generation_config.eos_token_id (one id or a list; Llama 3 lists <|eot_id|> and <|end_of_text|>)."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if not isinstance(configured, list | tuple):
        configured = [configured]
    ids = [tokenizer.eos_token_id, end_of_turn_id(tokenizer), *configured]
    return list(dict.fromkeys(int(i) for i in ids if i is not None))


GENERATE_CPU_BUDGET = 2 << 30   # bytes of KV cache + logits one generate() batch may hold on a CPU
GENERATE_MAX_BATCH = 128


def generation_batch_size(model: PreTrainedModel, n: int, max_tokens: int, *, budget: int | None = None,
                          cap: int = GENERATE_MAX_BATCH) -> int:
    """Sequences per generate() call: as many as fit the memory budget, at most ``n`` and ``cap``.

    Per sequence the KV cache holds 2 x layers x kv_heads x head_dim values per token over ``max_tokens``
    (prompt + answer), and each step's logits one vocabulary row (fp32, as generate's sampling upcasts).
    Budget: a quarter of the GPU's total memory (not its free memory: the same machine must batch the same
    way every run, or sampled answers would change with it), GENERATE_CPU_BUDGET on a CPU. Bigger batches
    amortise each decoding step's fixed cost (bench/RESULTS.md, generation for compare).
    """
    cfg = model.config
    layers = getattr(cfg, "num_hidden_layers", 1)
    heads = getattr(cfg, "num_attention_heads", 1)
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    dtype_bytes = torch.finfo(model.dtype).bits // 8 if model.dtype.is_floating_point else 4
    per_seq = 2 * layers * kv_heads * head_dim * max_tokens * dtype_bytes + cfg.vocab_size * 4
    if budget is None:
        if model.device.type == "cuda":
            budget = torch.cuda.get_device_properties(model.device).total_memory // 4
        else:
            budget = GENERATE_CPU_BUDGET
    return max(1, min(n, cap, budget // max(per_seq, 1)))


@torch.no_grad()
def generate(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, conversations: list[list[dict]], *,
             max_new_tokens: int = 64, temperature: float = 0.0, top_p: float = 1.0, seed: int = 0,
             batch_size: int | None = 32, progress: str | None = None) -> list[str]:
    """Answer each conversation (ending with a user turn); greedy when temperature == 0.

    ``progress``: a label for a progress bar over the answers (shown on a terminal only, as tqdm decides).

    Batched with left padding and the KV cache; prompts are sorted by length so batches pad little. An answer
    ends at any of `stop_token_ids` (the template's end-of-turn token even where it is not the eos).
    ``batch_size`` None: `generation_batch_size` picks it from the model, the longest prompt and the memory.
    """
    if not conversations:
        return []
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only batched generation needs left padding
    was_training = model.training
    model.eval()
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
    stop = stop_token_ids(tokenizer, model)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    if batch_size is None:
        longest = len(tokenizer(texts[order[-1]], add_special_tokens=False)["input_ids"])
        batch_size = generation_batch_size(model, len(texts), longest + max_new_tokens)
    out: list[str] = [""] * len(texts)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    bar = None
    if progress is not None:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(texts), desc=progress, unit="answer", disable=None, leave=False)
    try:
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True,
                            add_special_tokens=False).to(model.device)
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            sampling = temperature > 0
            ids = model.generate(
                **enc, max_new_tokens=max_new_tokens, do_sample=sampling,
                temperature=temperature if sampling else None, top_p=top_p if sampling else None, top_k=None,
                pad_token_id=tokenizer.pad_token_id, eos_token_id=stop,
            )  # (B, T_prompt + T_new)
            new = ids[:, enc["input_ids"].shape[1]:]
            for j, i in enumerate(idx):
                out[i] = tokenizer.decode(new[j], skip_special_tokens=True).strip()
            if bar is not None:
                bar.update(len(idx))
    finally:
        if bar is not None:
            bar.close()
        tokenizer.padding_side = old_side
        model.train(was_training)
    return out


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def save_model(pub_dir: Path, model, tokenizer, *, folder: str = "model") -> Path:
    """``model`` (safetensors) and ``tokenizer`` into ``pub_dir/folder``: what every stage publishes."""
    out = Path(pub_dir) / folder
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out
