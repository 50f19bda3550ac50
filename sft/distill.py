"""Self-distillation for SFT: the starting model's own greedy answers as targets for prompts it already handles.

An SFT on refusals and short toy answers costs a pretrained model knowledge and makes it refuse safe prompts
that sound unsafe (Llama 2's "alignment tax"; on SmolLM2, knowledge 0.70 -> 0.60). Training on the model's own
answers to ordinary and safe-sounding prompts keeps those behaviours where they were: it is Llama 2's context
distillation (§4.2.4) without the safety preprompt. Answers that refuse, are empty, or are cut off are cleaned:
a refusal or an empty answer is dropped, an answer cut off by ``self_distill_max_new_tokens`` is trimmed to its
last whole sentence, and a sentence the model repeats ends the answer there.

The answers are cached like compare's (eval/generations.py's cached_generate: key = model hash, prompts,
sampling), so a rerun or a resume does not generate them again. Every process generates the whole set (greedy,
so all agree).
"""

from __future__ import annotations

import re
import time

from camelid.data.records import SFTExample
from camelid.log import get_logger

log = get_logger("sft")
_SENTENCE_END = re.compile(r"(?<![0-9])[.!?](?=\s|$)")  # not the "1." of a list
MIN_CHARS = 20


def clean_answer(text: str) -> tuple[str | None, str]:
    """(answer to train on, or None to drop; what was done: kept | trimmed | repeated | refusal | empty | cut)."""
    from camelid.eval.refusal import is_refusal

    text = text.strip()
    if not text:
        return None, "empty"
    if is_refusal(text):
        return None, "refusal"
    how = "kept"
    seen: set[str] = set()
    for m in re.finditer(r"[^.!?\n]+[.!?]?", text):  # stop at the first sentence the model repeats
        s = " ".join(m.group(0).split()).lower()
        if len(s) > 20 and s in seen:
            text, how = text[:m.start()].rstrip(), "repeated"
            break
        seen.add(s)
    if not re.search(r"(?<![0-9])[.!?)\"'`*]$", text):  # cut off mid-sentence: keep the whole sentences
        ends = list(_SENTENCE_END.finditer(text))
        if not ends:
            return None, "cut"
        text, how = text[:ends[-1].end()], "trimmed" if how == "kept" else how
    text = text.rstrip()
    if len(text) < MIN_CHARS:
        return None, "cut"
    return text, how


def self_distill_examples(model, tokenizer, base, spec, *, max_new_tokens: int, cache=None
                          ) -> tuple[list[SFTExample], dict, str]:
    """The model's own answers to ``spec``'s prompts as SFT examples, with counts and the prompts' fingerprint.

    ``model`` is the model, or a function that loads it: called only on a cache miss (a second pass's teacher is
    another model, and a rerun finds every answer in the cache)."""
    from camelid.data.load import load_records
    from camelid.eval.generations import Sampling, cached_generate
    from camelid.models import generate

    prompts = load_records(spec, "prompts")
    convs = [p.messages for p in prompts.records]
    sampling = Sampling(max_new_tokens, 0.0, 1.0, 0)

    def answer(conversations: list) -> list[str]:  # a cache miss
        log.info("self-distillation: %s answers %d prompts (%s)", base.ref, len(conversations), prompts.name)
        return generate(model if hasattr(model, "generate") else model(), tokenizer,
                        conversations, **sampling.to_dict(), batch_size=None, progress=f"{base.ref} self-distillation")

    t0 = time.perf_counter()
    answers, from_cache = cached_generate(base, convs, sampling, answer, cache=cache, use="self_distill")
    examples, counts = [], {}
    for p, a in zip(prompts.records, answers):
        text, how = clean_answer(a)
        counts[how] = counts.get(how, 0) + 1
        if text is not None:
            examples.append(SFTExample(messages=[*p.messages, {"role": "assistant", "content": text}],
                                       source=f"self:{p.source or prompts.name}", id=p.id))
    stats = {"prompts": len(convs), "kept": len(examples), "outcomes": counts, "from_cache": from_cache,
             "seconds": round(time.perf_counter() - t0, 1)}
    log.info("self-distillation: kept %d of %d answers %s%s", len(examples), len(convs), counts,
             " (from the generation cache)" if from_cache else "")
    return examples, stats, prompts.fingerprint
