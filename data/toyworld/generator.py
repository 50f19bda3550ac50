"""ToyWorld: the seeded generator of SFT conversations, preference pairs and prompt sets.

Every row is generated from its own RNG, seeded by (world seed, stream, index), so row i is the same
whatever n is asked for, and any row can be regenerated from its id alone (``score_by_id``). Splits come
from a hash of each request's text (without the opener), so a request string is either on the training
side (sft train, pairs train, ppo) or the held-out side (sft heldout, pairs heldout, eval), never both.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from collections import Counter
from collections.abc import Iterator, Sequence

from camelid.data.records import RATINGS, PreferencePair, Prompt, SFTExample
from camelid.data.toyworld.atlas import Atlas, build_atlas
from camelid.data.toyworld.detect import REFUSALS, SUPPORTIVE_REFUSALS, normalize
from camelid.data.toyworld.families import (
    FLAWS,
    SUBFAMILIES,
    TASK_FAMILIES,
    TOPICS,
    SubFamily,
    Task,
)
from camelid.data.toyworld.oracle import OracleScore, score_meta
from camelid.errors import DataError

HELDOUT_PER_MILLE = 200  # share of request strings on the held-out side
DEFAULT_N = {"sft-train": 27540, "sft-heldout": 2000, "pairs-train": 10000, "pairs-heldout": 1000,
             "ppo": 4000, "eval": 1200}
SFT_MIX = {"arith": .18, "atlas": .18, "string": .16, "list": .10, "harmful": .18, "borderline": .20}
PROMPT_MIX = {
    "ppo": {"arith": .15, "atlas": .15, "string": .15, "list": .10, "harmful": .20, "borderline": .25},
    "eval": {"arith": .125, "atlas": .125, "string": .125, "list": .125, "harmful": .25, "borderline": .25},
}
PAIR_MIX = {
    "helpfulness": {"arith": .22, "atlas": .22, "string": .24, "list": .17, "borderline": .15},
    "safety": {"harmful": .55, "borderline": .45},
}
# (objective, prompt kind) -> rating -> weight; rating -> [((chosen, rejected), weight)] per prompt kind.
LEVEL_MIX = {
    ("helpfulness", "task"): dict.fromkeys(RATINGS, 0.25),
    ("helpfulness", "borderline"): dict(zip(RATINGS, (.4, .2, .2, .2))),
    ("safety", "borderline"): dict(zip(RATINGS, (.4, .2, .2, .2))),
    ("safety", "harmful"): dict(zip(RATINGS, (.6, .2, 0, .2))),
}
PLANS = {
    "task": {"significantly_better": {("gold", "unrelated"): .7, ("gold", "refusal"): .3},
             "better": {("gold", "wrong"): .8, ("near", "unrelated"): .2},
             "slightly_better": {("gold", "near"): .8, ("wrong", "unrelated"): .2},
             "negligibly_better": {("gold", "gold"): .75, ("near", "near"): .1, ("wrong", "wrong"): .15}},
    "borderline": {"significantly_better": {("gold", "refusal"): 1}, "better": {("gold", "wrong"): 1},
                   "slightly_better": {("gold", "near"): 1}, "negligibly_better": {("gold", "gold"): 1}},
    "harmful": {"significantly_better": {("gold", "comply"): 1}, "better": {("gold", "unrelated"): 1},
                "negligibly_better": {("gold", "gold"): 1}},
}
# Safety pairs on borderline prompts: answers are composed from steps shared across topics (families.STEPS),
# so every step string is chosen in some pairs and rejected in others; "slightly" is a help with one step
# swapped for another topic's step (vs a full help, or vs a help for another topic). Helpfulness pairs keep
# PLANS["borderline"] and the fixed TOPICS strings.
SAFETY_BORDERLINE_PLAN = {
    "significantly_better": {("gold", "refusal"): 1}, "better": {("gold", "wrong"): 1},
    "slightly_better": {("gold", "near"): .6, ("near", "wrong"): .4},
    "negligibly_better": {("gold", "gold"): .6, ("near", "near"): .2, ("wrong", "wrong"): .2},
}
# Safety pairs where the annotator preferred the compliant answer (chosen unsafe, rejected safe): the
# reward stage drops them (Llama 2 rule); they exist so that rule has something to drop.
HELPFULNESS_PREFERRED_SHARE = 0.04
SYSTEM_PROMPTS = ("You are a helpful assistant.", "You are a helpful, honest and harmless assistant.",
                  "Answer briefly.", "You are a concise assistant. Keep answers short.",
                  "You are a friendly assistant for a small company.", "Always answer in one short sentence.")
OPENERS = ("Quick question: ", "Hi! ", "Please help. ", "Hey! ", "I have a question. ")
_ID = re.compile(r"^toy-s(-?\d+)-(sft-train|sft-heldout|helpfulness-train|helpfulness-heldout|safety-train|"
                 r"safety-heldout|ppo|eval)-(\d+)$")


@functools.lru_cache(maxsize=1 << 18)
def split_of(text: str) -> str:
    """'train' or 'heldout': which side of the split a request string belongs to (stable across seeds)."""
    digest = hashlib.sha1(("camelid-toy-split:" + normalize(text)).encode()).digest()
    return "heldout" if int.from_bytes(digest[:4], "big") % 1000 < HELDOUT_PER_MILLE else "train"


def level_for_gap(gap: float) -> str:
    """The Llama 2 rating level a quality gap deserves."""
    return ("significantly_better" if gap >= 0.85 else "better" if gap >= 0.5
            else "slightly_better" if gap >= 0.2 else "negligibly_better")


def _pick(rng: random.Random, weights: dict):
    r = rng.random() * sum(weights.values())
    for key, w in weights.items():
        r -= w
        if r < 0 and w > 0:
            return key
    return next(k for k, w in reversed(weights.items()) if w > 0)


class ToyWorld:
    """The built-in benchmark of seed ``seed``: same seed, same data."""

    def __init__(self, seed: int = 0):
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise DataError(f"toy world seed must be an integer, got {seed!r}")
        self.seed = seed
        self.atlas: Atlas = build_atlas(seed)

    # ------------------------------------------------------------------ building blocks
    def _rng(self, stream: str, i: int) -> random.Random:
        return random.Random(f"camelid-toy/{self.seed}/{stream}/{i}")

    def _id(self, stream: str, i: int) -> str:
        return f"toy-s{self.seed}-{stream}-{i:06d}"

    def _draw(self, rng: random.Random, family: str, side: str) -> tuple[SubFamily, Task]:
        sub = rng.choice(SUBFAMILIES[family])
        for _ in range(2000):
            task = sub.sample(rng, self.atlas)
            if split_of(task.core) == side:
                return sub, task
        raise RuntimeError(f"{sub.category}: no request on the {side} side after 2000 draws")

    def _user(self, rng: random.Random, task: Task) -> dict:
        opener = rng.choice(OPENERS) if rng.random() < 0.25 else ""
        return {"role": "user", "content": opener + task.core}

    def _system(self, rng: random.Random, p: float) -> list[dict]:
        return [{"role": "system", "content": rng.choice(SYSTEM_PROMPTS)}] if rng.random() < p else []

    @staticmethod
    def _n(n: int | None, key: str) -> int:
        n = DEFAULT_N[key] if n is None else n
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise DataError(f"n must be a non-negative integer, got {n!r}")
        return n

    @staticmethod
    def _check(value: str, allowed: Sequence[str], what: str) -> str:
        if value not in allowed:
            raise DataError(f"toy world: unknown {what} {value!r}; use one of {', '.join(allowed)}")
        return value

    # ------------------------------------------------------------------ SFT
    def _sft(self, split: str, i: int, flaws: frozenset[str] | None = None
             ) -> tuple[SFTExample, list[tuple[SubFamily, Task, bool]]]:
        rng = self._rng(f"sft-{split}", i)
        messages = self._system(rng, 0.2)
        r = rng.random()
        turns = []
        for _ in range(3 if r < 0.03 else 2 if r < 0.18 else 1):
            sub, task = self._draw(rng, _pick(rng, SFT_MIX), split)
            # The draw happens whatever ``flaws`` says, so the default stream is the same with or without it.
            flawed = rng.random() < sub.flaw_rate and (flaws is None or sub.category in flaws)
            answer = sub.flawed(rng, task) if flawed else sub.gold(rng, task)
            messages += [self._user(rng, task), {"role": "assistant", "content": answer}]
            turns.append((sub, task, flawed))
        main = next((t for t in turns if t[2]), turns[-1])
        source = f"toy:{main[1].category}" + (":flawed" if main[2] else "")
        return SFTExample(messages=messages, source=source, id=self._id(f"sft-{split}", i)), turns

    def sft_examples(self, n: int | None = None, split: str = "train",
                     flaws: bool | Sequence[str] = True) -> list[SFTExample]:
        """SFT conversations (27,540 by default for train); some with a system prompt, some multi-turn.

        ``source`` is ``toy:<family>/<subfamily>``, with ``:flawed`` appended when the row carries a
        deliberate systematic flaw (see FLAWS and `flaw_report`). ``flaws``: True keeps every sub-family's
        flaw, False none (the flawed rows get gold answers), a list keeps only those sub-families' flaws.
        """
        split = self._check(split, ("train", "heldout"), "SFT split")
        keep = None if flaws is True else frozenset(_flaw_list(flaws))
        return [self._sft(split, i, keep)[0] for i in range(self._n(n, f"sft-{split}"))]

    # ------------------------------------------------------------------ preference pairs
    def _respond(self, rng: random.Random, sub: SubFamily, task: Task, how: str, composed: bool = False) -> str:
        if composed and how in ("gold", "near", "wrong"):  # safety pairs on borderline prompts
            return sub.composed(rng, task, how)
        if how == "gold":
            return sub.gold(rng, task)
        if how == "near":
            return sub.near(rng, task)
        if how == "wrong":
            return sub.wrong(rng, task)
        if how == "comply":
            return sub.comply(rng, task)
        if how == "refusal":
            return rng.choice(SUPPORTIVE_REFUSALS if task.harm == "self_harm" else REFUSALS)
        if how == "unrelated" and task.kind == "harmful":  # evasive: sound help on some benign topic
            return rng.choice(TOPICS[rng.choice(list(TOPICS))][0])
        if how == "unrelated":  # a right answer to some other family's question
            other_sub, other = self._draw(rng, rng.choice([f for f in TASK_FAMILIES if f != task.family]), "train")
            return other_sub.gold(rng, other)
        raise ValueError(how)

    def _pair(self, objective: str, split: str, i: int) -> tuple[PreferencePair, Prompt, SubFamily, Task]:
        rng = self._rng(f"{objective}-{split}", i)
        family = _pick(rng, PAIR_MIX[objective])
        flipped = family == "harmful" and rng.random() < HELPFULNESS_PREFERRED_SHARE / PAIR_MIX[objective][family]
        for _ in range(100):
            sub, task = self._draw(rng, family, split)
            composed = objective == "safety" and task.kind == "borderline"
            plan = SAFETY_BORDERLINE_PLAN if composed else PLANS[task.kind]
            system = self._system(rng, 0.15)
            messages = [*system, self._user(rng, task)]
            if flipped:
                rating, (c_how, r_how) = rng.choice(("better", "slightly_better")), ("comply", "refusal")
            else:
                rating = _pick(rng, LEVEL_MIX[(objective, task.kind)])
                c_how, r_how = _pick(rng, plan[rating])
            chosen = self._respond(rng, sub, task, c_how, composed)
            rejected = self._respond(rng, sub, task, r_how, composed)
            for _ in range(10):
                if chosen != rejected:
                    break
                rejected = self._respond(rng, sub, task, r_how, composed)
            sc, sr = score_meta(task.meta(), chosen), score_meta(task.meta(), rejected)
            ok = chosen != rejected and (
                (not sc.safe and sr.safe) if flipped else level_for_gap(sc.quality - sr.quality) == rating)
            if ok:
                break
        else:
            raise RuntimeError(f"could not build a {objective} pair for {task.category}")
        prompt = Prompt(messages=messages, is_safety=task.is_safety, category=task.category,
                        source=f"toy:{task.family}", id=self._id(f"{objective}-{split}", i), meta=task.meta())
        pair = PreferencePair(prompt=messages, chosen=chosen, rejected=rejected, rating=rating,
                              chosen_safe=sc.safe, rejected_safe=sr.safe, category=task.category,
                              source=f"toy:{objective}:{c_how}>{r_how}", id=prompt.id)
        return pair, prompt, sub, task

    def preference_pairs(self, objective: str = "helpfulness", n: int | None = None,
                         split: str = "train") -> list[PreferencePair]:
        """Pairs rated at the four Llama 2 levels by the size of the oracle-quality gap.

        ``source`` is ``toy:<objective>:<chosen kind>><rejected kind>`` (e.g. ``toy:helpfulness:gold>near``).
        """
        objective = self._check(objective, ("helpfulness", "safety"), "preference objective")
        split = self._check(split, ("train", "heldout"), "pair split")
        return [self._pair(objective, split, i)[0] for i in range(self._n(n, f"pairs-{split}"))]

    # ------------------------------------------------------------------ prompts
    def _prompt(self, split: str, i: int) -> tuple[Prompt, SubFamily, Task]:
        rng = self._rng(split, i)
        sub, task = self._draw(rng, _pick(rng, PROMPT_MIX[split]), "train" if split == "ppo" else "heldout")
        messages = [*self._system(rng, 0.1), self._user(rng, task)]
        prompt = Prompt(messages=messages, is_safety=task.is_safety, category=task.category,
                        source=f"toy:{task.family}", id=self._id(split, i), meta=task.meta())
        return prompt, sub, task

    def prompts(self, split: str = "eval", n: int | None = None) -> list[Prompt]:
        """Prompts for PPO (``ppo``, training side) or evaluation (``eval``, held-out side)."""
        split = self._check({"train": "ppo", "heldout": "eval"}.get(split, split), ("ppo", "eval"), "prompt split")
        return [self._prompt(split, i)[0] for i in range(self._n(n, split))]

    # ------------------------------------------------------------------ ids, oracle, reference answers
    def locate(self, prompt_id: str) -> tuple[Prompt, SubFamily, Task]:
        """Regenerate the prompt an id names (from any seed), with its sub-family and task."""
        m = _ID.match(prompt_id) if isinstance(prompt_id, str) else None
        if not m:
            raise DataError(f"not a toy-world id: {prompt_id!r} (expected e.g. toy-s0-eval-000123)")
        seed, stream, i = int(m.group(1)), m.group(2), int(m.group(3))
        if seed != self.seed:
            return world(seed).locate(prompt_id)
        if stream in ("ppo", "eval"):
            return self._prompt(stream, i)
        if stream.startswith("sft-"):
            example, turns = self._sft(stream[4:], i)
            sub, task, _ = turns[-1]
            prompt = Prompt(messages=example.messages[:-1], is_safety=task.is_safety, category=task.category,
                            source=f"toy:{task.family}", id=prompt_id, meta=task.meta())
            return prompt, sub, task
        objective, split = stream.split("-")
        return self._pair(objective, split, i)[1:]

    def prompt_by_id(self, prompt_id: str) -> Prompt:
        return self.locate(prompt_id)[0]

    def score_by_id(self, prompt_id: str, response: str) -> OracleScore:
        """Score a response to the prompt an id names (the id carries its seed)."""
        return score_meta(self.prompt_by_id(prompt_id).meta, response)

    def reference_answer(self, prompt: Prompt | str, policy: str = "gold") -> str:
        """A 'gold' answer, or one drawn like the SFT data ('sft': flawed sub-families answer badly)."""
        self._check(policy, ("gold", "sft"), "reference policy")
        prompt_id = prompt if isinstance(prompt, str) else prompt.id
        _, sub, task = self.locate(prompt_id)
        rng = random.Random(f"camelid-toy/answer/{policy}/{prompt_id}")
        if policy == "sft" and rng.random() < sub.flaw_rate:
            return sub.flawed(rng, task)
        return sub.gold(rng, task)

    # ------------------------------------------------------------------ tokenizer corpus
    def corpus(self, n_lines: int = 20000) -> Iterator[str]:
        """Text for tokenizer training: every family, refusals, compliance, digits, the chat markers."""
        fixed = ["0 1 2 3 4 5 6 7 8 9 10 100 1000", "[INST] <<SYS>> <</SYS>> [/INST]", *SYSTEM_PROMPTS,
                 *REFUSALS, *SUPPORTIVE_REFUSALS, *self.atlas.facts(),
                 *(h for helps, partial, _ in TOPICS.values() for h in (*helps, partial))]
        harmful = SUBFAMILIES["harmful"][0]
        rng = random.Random(f"camelid-toy/{self.seed}/corpus")
        fixed += [harmful.comply(rng, Task("harmful", "x", "harmful", "", "refusal", "", harm=h))
                  for h in ("weapons", "hacking", "fraud", "self_harm", "drugs")]
        count = 0
        for line in fixed:
            if count >= n_lines:
                return
            yield line
            count += 1
        i = 0
        while count < n_lines:
            example, turns = self._sft("train", i)
            lines = [m["content"] for m in example.messages if m["role"] != "system"]
            sub, task, _ = turns[-1]
            if task.kind == "task" and i % 2 == 0:
                lines.append(sub.near(rng, task) if i % 4 == 0 else sub.wrong(rng, task))
            if i % 100 == 0:
                lines.append("[INST] <<SYS>> <</SYS>> [/INST]")
            for line in lines:
                if count >= n_lines:
                    return
                yield line
                count += 1
            i += 1


@functools.lru_cache(maxsize=8)
def world(seed: int = 0) -> ToyWorld:
    """A cached ToyWorld (building the atlas is cheap, but ids are scored one by one)."""
    return ToyWorld(seed)


def score_by_id(prompt_id: str, response: str) -> OracleScore:
    """Score a response to the toy prompt an id names (e.g. ``toy-s0-eval-000123``)."""
    return world(0).score_by_id(prompt_id, response)


def _flaw_list(flaws) -> list[str]:
    if flaws is False:
        return []
    if isinstance(flaws, str) or not isinstance(flaws, (list, tuple, set, frozenset)):
        raise DataError(f"toy world: options.flaws must be true, false or a list of sub-families, got {flaws!r}")
    unknown = [f for f in flaws if f not in FLAWS]
    if unknown:
        raise DataError(f"toy world: options.flaws: {', '.join(map(str, unknown))} carry no flaw; the flawed "
                        f"sub-families are {', '.join(FLAWS)}")
    return list(flaws)


TOY_OPTIONS = ("flaws",)


def records(kind: str, *, split: str | None = None, n: int | None = None, seed: int = 0,
            objective: str | None = None, options: dict | None = None) -> list:
    """What the data loader calls for ``format: toy`` specs: 'sft' | 'pairs' | 'prompts' records.

    ``options.flaws`` (SFT only): true (the default: every deliberate flaw of FLAWS), false (none: those rows
    get gold answers) or the list of sub-families whose flaws stay."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(TOY_OPTIONS))
    if unknown:
        raise DataError(f"format 'toy': unknown option(s) {', '.join(unknown)}; the toy world takes "
                        f"{', '.join(TOY_OPTIONS)}")
    if "flaws" in options and kind != "sft":
        raise DataError("format 'toy': options.flaws is for SFT data; pairs and prompts carry no flaws")
    w = world(seed)
    if kind == "sft":
        return w.sft_examples(n=n, split=split or "train", flaws=options.get("flaws", True))
    if kind == "pairs":
        return w.preference_pairs(objective or "helpfulness", n=n, split=split or "train")
    if kind == "prompts":
        return w.prompts(split=split or "ppo", n=n)
    raise DataError(f"toy world: unknown record kind {kind!r}; use sft, pairs or prompts")


def flaw_report(examples: Sequence[SFTExample]) -> dict:
    """Share of deliberately imperfect SFT rows, overall and per sub-family (read from ``source``)."""
    total, flawed = Counter(), Counter()
    for ex in examples:
        category = ex.source.removeprefix("toy:").removesuffix(":flawed")
        total[category] += 1
        flawed[category] += ex.source.endswith(":flawed")
    n, bad = sum(total.values()), sum(flawed.values())
    return {"n": n, "imperfect": bad, "share": bad / n if n else 0.0,
            "by_subfamily": {c: {"n": total[c], "imperfect": flawed[c], "share": flawed[c] / total[c]}
                             for c in sorted(total)}}
