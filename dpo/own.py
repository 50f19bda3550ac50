"""A model's own answers in DPO's pairs (`stages.dpo.own_answers`).

Generated preference data (camelid.data.realworld) pairs a refusal of a harmful request with a compliant answer
camelid wrote from templates. The likely reason DPO on them gives refusals away (a hypothesis, not measured pair by
pair): the SFT policy already finds those templates unlikely, so the harmful half of the data soon stops pulling
while the safe half (help over a refusal the policy does write) keeps pushing refusals down everywhere. Measured on SmolLM2 after the smol profile's
SFT (docs/experiments/smollm2.md): real held-out harmful refusal 0.957 -> 0.891 and XSTest's unsafe prompts 0.893 ->
0.813, while over-refusal fell. A compliance written by a real model, the base model the SFT started from (it
complies with most real harmful requests), is closer to what the policy would write if it complied: with it as the
rejected answer the refusals held better (held-out harmful 0.935, XSTest unsafe 0.867) and over-refusal still fell
(XSTest safe 0.427 -> 0.347). With its help as the chosen answer too (``sides: [rejected, chosen]``) nothing safe
moved.

Which pairs a side is replaced in, by the refusal detector (camelid.eval.refusal), so any pair data works:
- ``rejected``: the chosen answer is a refusal and the model's answer is not (nor empty): the model's answer
  becomes the rejected one (``rejected_safe`` unknown);
- ``chosen``: the rejected answer is a refusal, the chosen one is not, and the model's answer, cleaned as
  self-distillation cleans it (camelid.sft.distill.clean_answer), is a whole non-refusal: it becomes the chosen one.
Elsewhere a pair is kept as it was. Only the prompts of pairs a side may change in are answered; the answers are
cached like compare's (key: the model's hash, the prompts, greedy decoding).
"""

from __future__ import annotations

import dataclasses
import time

from camelid.data.records import PreferencePair
from camelid.log import get_logger

log = get_logger("dpo")


def replaceable(pair: PreferencePair, sides) -> tuple[bool, bool]:
    """(may the rejected side change, may the chosen side change) for this pair, by the refusal detector."""
    from camelid.eval.refusal import is_refusal

    chosen_refuses, rejected_refuses = is_refusal(pair.chosen), is_refusal(pair.rejected)
    return ("rejected" in sides and chosen_refuses and not rejected_refuses,
            "chosen" in sides and rejected_refuses and not chosen_refuses)


def apply_answers(pairs: list[PreferencePair], answers: dict[int, str], sides) -> tuple[list[PreferencePair], dict]:
    """``pairs`` with the answers (by pair index) put in where the rules allow, and counts of what was done."""
    from camelid.eval.refusal import is_refusal
    from camelid.sft.distill import clean_answer

    counts = {"answered": len(answers), "rejected_replaced": 0, "chosen_replaced": 0, "refused": 0, "unusable": 0}
    out = []
    for i, pair in enumerate(pairs):
        if i not in answers:
            out.append(pair)
            continue
        answer = answers[i].strip()
        may_reject, may_choose = replaceable(pair, sides)
        if may_reject and answer and not is_refusal(answer):
            pair = dataclasses.replace(pair, rejected=answer, rejected_safe=None)
            counts["rejected_replaced"] += 1
        elif may_choose:
            text, how = clean_answer(answer)
            if text is not None:
                pair = dataclasses.replace(pair, chosen=text)
                counts["chosen_replaced"] += 1
            else:
                counts["refused" if how == "refusal" else "unusable"] += 1
        else:
            counts["refused" if is_refusal(answer) else "unusable"] += 1
        out.append(pair)
    return out, counts


def own_answers(pairs: list[PreferencePair], settings, artifact, *, device: str = "auto",
                cache=None) -> tuple[list[PreferencePair], dict]:
    """``pairs`` with ``settings.model``'s (``artifact``'s) greedy answers put in (see the module doc), and counts."""
    from camelid.eval.compare_judge import answer
    from camelid.eval.generations import Sampling
    from camelid.eval.share import Share

    todo = [i for i, p in enumerate(pairs) if any(replaceable(p, settings.sides))]
    if not todo:
        log.info("own_answers: no pair has a refusal on exactly one side; nothing to answer")
        return apply_answers(pairs, {}, settings.sides)
    convs = [pairs[i].prompt for i in todo]
    t0 = time.perf_counter()
    # compare's cached answering: the model is loaded only on a cache miss; every process answers all (greedy)
    answers, from_cache = answer(artifact, convs, Sampling(settings.max_new_tokens, 0.0, 1.0, 0), None,
                                 Share(len(convs)), cache=cache, device=device)
    out, counts = apply_answers(pairs, dict(zip(todo, answers)), settings.sides)
    counts.update(model=artifact.ref, from_cache=from_cache, seconds=round(time.perf_counter() - t0, 1))
    log.info("own_answers: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
    return out, counts
