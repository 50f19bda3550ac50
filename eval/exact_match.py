"""Exact-match scoring of answers to prompts that carry a reference answer, for `camelid compare`.

A prompt's reference is ``meta.answer`` (the gsm8k adapter keeps GSM8K's final number there) or
``meta.answers`` (accepted answers, as the knowledge check's prompts carry). How an answer is matched
depends on the reference's form:

- a number (GSM8K): the response's final answer, i.e. the number after its last ``####`` if it has one,
  else its last number, equals the reference as a number (``1,200`` = ``1200`` = ``1200.0``);
- a letter A-J (multiple choice): the letter the response picks (``B``, ``(B)``, ``B.``, ``answer is B``);
- anything else: the knowledge check's answer match (camelid.data.realworld.knowledge.is_correct).

Toy-world prompts are left out: their ``meta.answer`` is scored by the oracle, which knows each family's
answer format.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")
_LETTER = re.compile(r"^[A-J]$")
_PICKED = (re.compile(r"\banswer\s*(?:is|:)?\s*\(?([A-J])\)?(?![\w'])", re.IGNORECASE),
           # a bare letter only with its punctuation: "A man..." and "I think..." pick nothing
           re.compile(r"^\s*(?:\(([A-J])\)|([A-J])(?:[.):]|$))"))


def references(prompt) -> list[str] | None:
    """The reference answers a prompt carries, or None (toy-world prompts: the oracle's, also in a mixture)."""
    from camelid.data.toyworld import is_toy_prompt

    if is_toy_prompt(prompt):
        return None
    answers = prompt.meta.get("answers")
    if isinstance(answers, list | tuple) and answers:
        return [str(a) for a in answers]
    answer = prompt.meta.get("answer")
    if isinstance(answer, str | int | float) and not isinstance(answer, bool) and str(answer).strip():
        return [str(answer).strip()]
    return None


def _as_number(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "").replace("$", "").rstrip("."))
    except InvalidOperation:
        return None


def final_number(response: str) -> Decimal | None:
    """GSM8K's convention: the number after the last '####', else the response's last number."""
    tail = response.rsplit("####", 1)[1] if "####" in response else response
    found = _NUMBER.findall(tail)
    return _as_number(found[-1 if "####" not in response else 0]) if found else None


def picked_letter(response: str) -> str | None:
    """The option letter a multiple-choice answer picks."""
    for pattern in _PICKED:
        m = pattern.search(response.strip())
        if m:
            return next(g for g in m.groups() if g).upper()
    return None


def is_match(response: str, refs: list[str]) -> bool:
    """Whether the response gives one of the reference answers (by the reference's form, see the module doc)."""
    from camelid.data.realworld.knowledge import is_correct

    for ref in refs:
        number = _as_number(ref) if _NUMBER.fullmatch(ref.strip()) else None
        if number is not None:
            if final_number(response) == number:
                return True
        elif _LETTER.match(ref.strip().upper()) and len(ref.strip()) == 1:
            if picked_letter(response) == ref.strip().upper():
                return True
        elif is_correct(response, [ref]):
            return True
    return False


def exact_match(prompts: list, responses: list[str]) -> dict | None:
    """{exact_match, n}: the share of prompts with a reference whose response matches it; None if none has one."""
    scored = [is_match(r, refs) for p, r in zip(prompts, responses)
              if (refs := references(p)) is not None]
    if not scored:
        return None
    return {"exact_match": sum(scored) / len(scored), "n": len(scored)}
