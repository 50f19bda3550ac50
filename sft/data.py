"""SFT data preparation: conversations -> token ids + answer masks for TRL, with every example accounted for.

Loss on answers only (Llama 2). We tokenize every conversation ourselves and hand TRL `input_ids` and
`assistant_masks` (TRL turns the mask into labels, truncates and packs): that lets us count and
drop/truncate examples over ``max_length``, drop examples that would train on nothing, report the token
counts tokens/s and the manifest need, and mask answers for templates TRL cannot.

The mask comes from the template's `{% generation %}` markers when it has them (our llama2 template), else
from TRL's patched copy of a template it knows, else it is DERIVED by rendering the conversation turn by
turn (`answer_masks`). Real chat models' own templates (SmolLM2's ChatML, ...) have no markers, and TRL
refuses them ("chat template is not training-compatible"). We derive rather than switch such a model to
the llama2 template: an instruct model already knows its own format (SmolLM2 was tuned on ChatML), so SFT,
sampling, reward scoring and `camelid chat` all keep speaking it, and no stage has to teach a 135M model
new markup from a few hundred examples.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from camelid.errors import CamelidError, DataError

CHUNK = 1000  # conversations per apply_chat_template call


@dataclass
class PreparedData:
    """Tokenized conversations ready for SFTTrainer plus an account of what was kept, cut and dropped."""

    conversations: list[list[dict]]
    lengths: list[int]                 # tokens per kept conversation, after truncation
    answer_tokens: int                 # trained tokens (answer mask) over all kept conversations
    read: int
    truncated: int = 0
    dropped: Counter = field(default_factory=Counter)
    input_ids: list[list[int]] = field(default_factory=list)  # per kept conversation, after truncation
    masks: list[list[int]] = field(default_factory=list)      # 1 on trained (answer) tokens

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
        """A pre-tokenized `datasets.Dataset`: TRL builds labels from `assistant_masks`, then truncates/packs."""
        from datasets import Dataset

        return Dataset.from_dict({"input_ids": self.input_ids, "assistant_masks": self.masks})


def marked_template(tokenizer) -> str | None:
    """The tokenizer's template if it has `{% generation %}` markers, else TRL's patched one, else None."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    template = tokenizer.chat_template
    if has_generation_markers(template):
        return template
    try:
        return get_training_chat_template(tokenizer) or None
    except (ValueError, NotImplementedError):  # a template TRL does not know: derive the mask (answer_masks)
        return None


def _special_strings(tokenizer) -> list[str]:
    specials = set(tokenizer.all_special_tokens)
    specials |= {t.content for t in tokenizer.added_tokens_decoder.values() if t.special}
    return sorted(specials, key=len, reverse=True)


def answer_spans(tokenizer, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """(rendered text, character spans of each assistant answer and its end-of-turn token).

    An answer starts where the generation prompt of the conversation so far ends, and ends after the first
    special token that follows its content (ChatML's `<|im_end|>`, llama2's `</s>`); what the template writes
    after that ("\\n") belongs to the next turn and is not trained: generation stops at the end-of-turn token.
    A template that writes no special token after an answer is refused: the model could never learn to stop.
    """
    def render(msgs, prompt=False):
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=prompt)

    text, spans, specials = render(messages), [], _special_strings(tokenizer)
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prefix, upto = render(messages[:i], prompt=True), render(messages[:i + 1])
        if not (upto.startswith(prefix) and text.startswith(upto)):
            raise DataError(
                f"the chat template is not prefix-preserving (turn {i + 1} renders differently once later turns "
                "follow), so the answer tokens cannot be derived; use chat_template: llama2 or a template with "
                "{% generation %} markers")
        turn = upto[len(prefix):]
        content_at = max(turn.find(m["content"].strip()), 0)
        after = content_at + len(m["content"].strip())
        ends = [(k + len(s)) for s in specials if (k := turn.find(s, after)) >= 0]
        if not ends:
            raise DataError(
                "the chat template writes no special token after an assistant answer (an end-of-turn token such as "
                "</s> or <|im_end|>), so the model would never learn to stop; use chat_template: llama2 or a "
                "template that ends assistant turns with one")
        spans.append((len(prefix), len(prefix) + min(ends)))
    return text, spans


def answer_masks(tokenizer, conversations: list[list[dict]]) -> tuple[list[list[int]], list[list[int]]]:
    """(input ids, answer masks) of each conversation, the mask derived by `answer_spans`.

    Characters map to tokens as transformers maps `{% generation %}` blocks (the token holding an answer's
    first character through the one holding its last), so on a template with markers the two masks agree.
    """
    texts, all_spans = zip(*(answer_spans(tokenizer, c) for c in conversations))
    enc = tokenizer(list(texts), add_special_tokens=False)
    masks = []
    for b, spans in enumerate(all_spans):
        mask = [0] * len(enc["input_ids"][b])
        for start, end in spans:
            first, last = enc.char_to_token(b, start), enc.char_to_token(b, end - 1)
            if first is not None and last is not None:
                mask[first:last + 1] = [1] * (last + 1 - first)
        masks.append(mask)
    return enc["input_ids"], masks


def _tokenize(tokenizer, template: str | None, chunk: list[list[dict]]) -> tuple[list, list]:
    if template is None:
        return answer_masks(tokenizer, chunk)
    enc = tokenizer.apply_chat_template(chunk, chat_template=template, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    return enc["input_ids"], enc["assistant_masks"]


def _messages_of(record) -> list[dict]:
    msgs = record["messages"] if isinstance(record, dict) else record.messages
    return [{"role": m["role"], "content": m["content"]} for m in msgs]


def prepare(records, tokenizer, *, max_length: int, too_long: str, what: str = "data") -> PreparedData:
    """Tokenize and mask, then apply ``too_long`` ('truncate' | 'drop'); raise DataError if nothing is left."""
    if too_long not in ("truncate", "drop"):
        raise CamelidError(f"too_long must be 'truncate' or 'drop', got {too_long!r}")
    template = marked_template(tokenizer)
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
        for msgs, ids, mask in zip(chunk, *_tokenize(tokenizer, template, chunk)):
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
            out.input_ids.append(list(ids))
            out.masks.append(list(mask))
            out.lengths.append(len(ids))
            out.answer_tokens += trained
    if not out.conversations:
        raise DataError(f"{what}: no trainable conversations left ({out.summary()}); check the data and "
                        "max_length / too_long")
    return out
