"""SFT data preparation: conversations -> a `messages` dataset for TRL, with every example accounted for.

TRL tokenizes and masks (`assistant_only_loss=True` with the template's `{% generation %}` markers).
Before handing the conversations over, we tokenize them once ourselves, the same way, to do what TRL
does silently or not at all: count and drop/truncate examples over ``max_length``, drop examples that
would train on nothing (no assistant turn, or no answer token left within ``max_length``), and report
the token counts that tokens/s and the manifest need.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from camelid.errors import CamelidError, DataError

CHUNK = 1000  # conversations per apply_chat_template call


@dataclass
class PreparedData:
    """Conversations ready for SFTTrainer plus an account of what was kept, cut and dropped."""

    conversations: list[list[dict]]
    lengths: list[int]                 # tokens per kept conversation, after truncation
    answer_tokens: int                 # trained tokens (assistant mask) over all kept conversations
    read: int
    truncated: int = 0
    dropped: Counter = field(default_factory=Counter)

    @property
    def tokens(self) -> int:
        return sum(self.lengths)

    def stats(self) -> dict:
        return {"read": self.read, "kept": len(self.conversations), "truncated": self.truncated,
                "dropped": dict(self.dropped), "tokens": self.tokens, "answer_tokens": self.answer_tokens}

    def summary(self) -> str:
        drops = ", ".join(f"{k}: {v}" for k, v in self.dropped.most_common()) or "none"
        return (f"read {self.read}, kept {len(self.conversations)}, truncated {self.truncated}, "
                f"dropped {sum(self.dropped.values())} ({drops}); {self.tokens} tokens, "
                f"{self.answer_tokens} trained")

    def dataset(self):
        """A `datasets.Dataset` with one `messages` column (TRL's conversational format)."""
        from datasets import Dataset

        return Dataset.from_dict({"messages": self.conversations})


def training_chat_template(tokenizer) -> str:
    """The tokenizer's template if it has `{% generation %}` markers, else TRL's patched one, else an error."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    template = tokenizer.chat_template
    if has_generation_markers(template):
        return template
    try:
        patched = get_training_chat_template(tokenizer)
    except (ValueError, NotImplementedError) as e:
        raise CamelidError(
            "the chat template has no {% generation %} markers, so the loss cannot be limited to the assistant's "
            f"tokens ({str(e).splitlines()[0]}); use chat_template: llama2 or a template that wraps assistant "
            "turns in {% generation %}...{% endgeneration %}") from None
    return patched or template


def _messages_of(record) -> list[dict]:
    msgs = record["messages"] if isinstance(record, dict) else record.messages
    return [{"role": m["role"], "content": m["content"]} for m in msgs]


def prepare(records, tokenizer, *, max_length: int, too_long: str, what: str = "data") -> PreparedData:
    """Tokenize like TRL will, then apply ``too_long`` ('truncate' | 'drop'); raise DataError if nothing is left."""
    if too_long not in ("truncate", "drop"):
        raise CamelidError(f"too_long must be 'truncate' or 'drop', got {too_long!r}")
    template = training_chat_template(tokenizer)
    out = PreparedData(conversations=[], lengths=[], answer_tokens=0, read=len(records))
    convs = []
    for r in records:
        msgs = _messages_of(r)
        if not any(m["role"] == "assistant" for m in msgs):
            out.dropped["no assistant turn"] += 1
        else:
            convs.append(msgs)
    for start in range(0, len(convs), CHUNK):
        chunk = convs[start:start + CHUNK]
        enc = tokenizer.apply_chat_template(chunk, chat_template=template, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
        for msgs, ids, mask in zip(chunk, enc["input_ids"], enc["assistant_masks"]):
            if len(ids) > max_length:
                if too_long == "drop":
                    out.dropped[f"longer than max_length={max_length}"] += 1
                    continue
                ids, mask = ids[:max_length], mask[:max_length]  # TRL keeps the start (truncation_mode keep_start)
                out.truncated += 1
            trained = sum(mask)
            if trained == 0:
                out.dropped[f"no answer token within max_length={max_length}"] += 1
                continue
            out.conversations.append(msgs)
            out.lengths.append(len(ids))
            out.answer_tokens += trained
    if not out.conversations:
        raise DataError(f"{what}: no trainable conversations left ({out.summary()}); check the data and "
                        "max_length / too_long")
    return out
