"""Real-wording rows from parts: harmful requests (refused), safe prompts that sound unsafe (answered), and
ordinary instructions (prompts for self-distillation).

Splits hold out whole parts, not rows: every ``EVAL_EVERY``-th harmful act, phrasing template and safe topic
(by position in its list in parts.py) is on the ``eval`` side, the rest on ``train``; an eval row is made of
eval parts only, so it shares no act, template or topic with any training row. Ordinary prompts are
training-side only (the knowledge check, knowledge.py, is the held-out measure of what the model knows).

Row i of a (kind, split, objective) stream comes from its own RNG seeded by (seed, stream, i): ``n=100`` is
a prefix of ``n=1000``, and ids are stable (``real-s0-sft-train-000042``).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from camelid.data.realworld import parts
from camelid.data.records import PreferencePair, Prompt, SFTExample
from camelid.errors import DataError

EVAL_EVERY = 4
SPLITS = ("train", "eval")
SPLIT_ALIASES = {"heldout": "eval", "ppo": "train", "test": "eval"}
GROUPS = ("harmful", "safe", "ordinary")  # a spec without options.groups draws from these
# Asked for by name only (options.groups), so every default stream stays as it was: the wordplay pairs (parts.py).
WORDPLAY_GROUPS = ("wordplay", "wordplay_unsafe")
ALL_GROUPS = GROUPS + WORDPLAY_GROUPS
ANSWERLESS = ("ordinary", "wordplay")  # prompts only: the model answers them itself (stages.sft.self_distill)
REFUSED = ("harmful", "wordplay_unsafe")  # harmful requests: refused in sft, refusal over compliance in pairs
BLUNT_SHARE = .35  # of harmful rows: a short blunt question (parts.BLUNT) rather than an act inside a template
DEFAULT_N = {"train": 2000, "eval": 240}
MIX = {  # group weights per kind; ordinary and wordplay prompts have no answers of ours, so sft and pairs leave them out
    # SFT leans to safe prompts: at .5/.5 SmolLM2's ppo policy over-refused 0.19 of held-out safe prompts (#25)
    "sft": {"harmful": .45, "safe": .55, "wordplay_unsafe": .2},
    "pairs": {"harmful": .5, "safe": .5, "wordplay_unsafe": .2},
    "prompts": {"harmful": .4, "safe": .4, "ordinary": .2, "wordplay": .2, "wordplay_unsafe": .2},
}


def _side(i: int) -> str:
    return "eval" if i % EVAL_EVERY == EVAL_EVERY - 1 else "train"


def _held(items, split: str) -> list:
    return [x for i, x in enumerate(items) if _side(i) == split]


@dataclass(frozen=True)
class Harmful:
    category: str
    act: str
    style: str
    template: str

    @property
    def request(self) -> str:
        return self.template.format(act=self.act)


@dataclass(frozen=True)
class Safe:
    type: str
    questions: tuple[str, ...]
    answer: str


@dataclass(frozen=True)
class Wordplay:
    """A harmless object of a verb a refusal keys on, in a short template ("How can I kill a hanging Node server?")."""
    verb: str
    obj: str
    template: str

    @property
    def request(self) -> str:
        return self.template.format(act=f"{self.verb} {self.obj}")


def _wordplay_pools(split: str) -> tuple[list[Wordplay], list[Harmful]]:
    templates = _held(parts.WORDPLAY_TEMPLATES, split)
    safe = [Wordplay(verb, obj, t) for verb, objs in parts.WORDPLAY_SAFE.items() for obj in _held(objs, split)
            for t in templates]
    targets = [("violence", verb, who) for verb in parts.WORDPLAY_UNSAFE_VERBS
               for who in _held(parts.WORDPLAY_PEOPLE, split)]
    targets += [("animal_cruelty", verb, pet) for verb in parts.WORDPLAY_PET_VERBS
                for pet in _held(parts.WORDPLAY_PETS, split)]
    unsafe = [Harmful(cat, f"{verb} {who}{tail}", "wordplay", t) for cat, verb, who in targets
              for tail in parts.WORDPLAY_UNSAFE_TAILS for t in templates]  # the plain act half the time
    return safe, unsafe


@functools.lru_cache(maxsize=4)
def pools(split: str) -> dict[str, list]:
    """Every part on one side of the split: harmful (act x template) items, safe topics, ordinary prompts."""
    templates = {style: _held(ts, split) for style, ts in parts.PHRASINGS.items()}
    harmful = [Harmful(cat, act, style, t) for cat, spec in parts.HARMFUL.items() for act in _held(spec["acts"], split)
               for style, ts in templates.items() for t in ts]
    blunt = [Harmful(cat, q, "blunt", "{act}") for cat, qs in parts.BLUNT.items() for q in _held(qs, split)]
    safe = [Safe(kind, qs, a) for kind, topics in parts.SAFE.items() for qs, a in _held(topics, split)]
    ordinary: list[str] = []
    if split == "train":
        ordinary += [t.format(activity=a) for t in parts.ORDINARY_TEMPLATES if "{activity}" in t for a in parts.ACTIVITIES]
        ordinary += [t.format(thing=x) for t in parts.ORDINARY_TEMPLATES if "{thing}" in t for x in parts.THINGS]
        ordinary += [t.format(concept=c) for t in parts.ORDINARY_TEMPLATES if "{concept}" in t for c in parts.CONCEPTS]
        ordinary += list(parts.FACT_QUESTIONS)
    wordplay, wordplay_unsafe = _wordplay_pools(split)
    return {"harmful": harmful, "blunt": blunt, "safe": safe, "ordinary": ordinary, "wordplay": wordplay,
            "wordplay_unsafe": wordplay_unsafe}


def refusal(rng: random.Random, item: Harmful) -> str:
    spec = parts.HARMFUL[item.category]
    if spec.get("support"):
        return rng.choice(parts.SUPPORT_REFUSALS)
    offer = parts.FICTION_OFFER if item.style == "fiction" and rng.random() < .6 else spec["offer"]
    tail = [spec["reason"], offer] if rng.random() < .7 else [offer]
    return " ".join([rng.choice(parts.REFUSAL_OPENERS), *tail])


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    keys = [k for k, w in weights.items() if w > 0]
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


class RealWorld:
    """The generator: ``sft_examples``, ``preference_pairs``, ``prompts`` for one seed."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def _rng(self, stream: str, i: int) -> random.Random:
        return random.Random(f"camelid-real:{self.seed}:{stream}:{i}")

    def _draw(self, rng: random.Random, split: str, weights: dict[str, float]) -> tuple[str, object]:
        pool = pools(split)
        weights = {g: w for g, w in weights.items() if pool[g]}
        if not weights:
            raise DataError(f"format 'real': split {split!r} has no rows of the groups asked for")
        group = _pick(rng, weights)
        if group == "harmful" and pool["blunt"] and rng.random() < BLUNT_SHARE:
            return group, rng.choice(pool["blunt"])
        return group, rng.choice(pool[group])

    def _user(self, rng: random.Random, group: str, item) -> str:
        if group in (*REFUSED, "wordplay"):
            return item.request
        if group == "safe":
            return rng.choice(parts.SAFE_FRAMES).format(q=rng.choice(item.questions))
        return item

    def _prompt(self, group: str, item, text: str, pid: str) -> Prompt:
        if group in REFUSED:
            return Prompt(messages=[{"role": "user", "content": text}], is_safety=True,
                          category=f"real-harmful/{item.category}/{item.style}", source="real:harmful", id=pid,
                          meta={"kind": "harmful", "should_refuse": True, "style": item.style})
        if group == "safe":
            return Prompt(messages=[{"role": "user", "content": text}], is_safety=True,
                          category=f"real-safe/{item.type}", source="real:safe", id=pid,
                          meta={"kind": "borderline", "borderline": True, "reference": item.answer})
        if group == "wordplay":
            return Prompt(messages=[{"role": "user", "content": text}], is_safety=True,
                          category=f"real-wordplay/{item.verb}", source="real:wordplay", id=pid,
                          meta={"kind": "borderline", "borderline": True})
        return Prompt(messages=[{"role": "user", "content": text}], is_safety=False, category="real-ordinary",
                      source="real:ordinary", id=pid, meta={"kind": "ordinary"})

    def prompts(self, split: str, n: int, groups: tuple[str, ...] = GROUPS) -> list[Prompt]:
        out, seen = [], set()
        for i in range(n):
            rng = self._rng(f"prompts-{split}", i)
            for _ in range(20):  # distinct prompts while the pool has them (an eval counts each prompt once)
                group, item = self._draw(rng, split, {g: w for g, w in MIX["prompts"].items() if g in groups})
                text = self._user(rng, group, item)
                if text not in seen:
                    break
            seen.add(text)
            out.append(self._prompt(group, item, text, f"real-s{self.seed}-prompts-{split}-{i:06d}"))
        return out

    def sft_examples(self, split: str, n: int, groups: tuple[str, ...] = GROUPS) -> list[SFTExample]:
        out = []
        for i in range(n):
            rng = self._rng(f"sft-{split}", i)
            group, item = self._draw(rng, split, {g: w for g, w in MIX["sft"].items() if g in groups})
            answer = refusal(rng, item) if group in REFUSED else item.answer
            out.append(SFTExample(messages=[{"role": "user", "content": self._user(rng, group, item)},
                                            {"role": "assistant", "content": answer}],
                                  source=f"real:{group}", id=f"real-s{self.seed}-sft-{split}-{i:06d}"))
        return out

    def preference_pairs(self, objective: str, split: str, n: int,
                         groups: tuple[str, ...] = GROUPS) -> list[PreferencePair]:
        """Safety: refusal over compliance (or an evasion) on harmful requests, help over a refusal (or another
        topic's help) on safe ones. Helpfulness: the safe prompts' pairs only (an answer that helps beats one that
        refuses or misses the topic)."""
        weights = {g: w for g, w in MIX["pairs"].items() if g in groups}
        if objective == "helpfulness":
            weights.pop("harmful", None)
        out = []
        for i in range(n):
            rng = self._rng(f"pairs-{objective}-{split}", i)
            group, item = self._draw(rng, split, weights)
            text = self._user(rng, group, item)
            r = rng.random()
            if group in REFUSED:
                chosen, chosen_safe = refusal(rng, item), True
                if r < .4:  # an eager compliant start
                    compliance = parts.BLUNT_COMPLIANCE if item.style == "blunt" else parts.COMPLIANCE
                    rejected, rating, rejected_safe = rng.choice(compliance).format(act=item.act), \
                        "significantly_better", False
                elif r < .75:  # a plain answer with content, the way a small chat model complies
                    rejected, rating, rejected_safe = rng.choice(parts.PLAIN_COMPLIANCE), "significantly_better", False
                else:
                    rejected, rating, rejected_safe = rng.choice(EVASIONS), "better", True
            else:
                chosen, chosen_safe, rejected_safe = item.answer, True, True
                if r < .7:  # a whole refusal, reason and offer included, as an over-refusing SFT model writes it
                    harmful = rng.choice(pools(split)["harmful"])
                    rejected, rating = refusal(rng, harmful), "significantly_better"
                else:
                    other = rng.choice([s for s in pools(split)["safe"] if s is not item])
                    rejected, rating = other.answer, "better"
            out.append(PreferencePair(prompt=[{"role": "user", "content": text}], chosen=chosen, rejected=rejected,
                                      rating=rating, chosen_safe=chosen_safe, rejected_safe=rejected_safe,
                                      category=f"real-{group}", source=f"real:{objective}:{group}",
                                      id=f"real-s{self.seed}-{objective}-{split}-{i:06d}"))
        return out


EVASIONS = (
    "That's an interesting question, and people have many opinions about it.",
    "There are lots of ways to think about this; it depends on your situation.",
    "Let's talk about something else. What are your plans for the weekend?",
)


REAL_OPTIONS = ("groups",)


def records(kind: str, *, split: str | None = None, n: int | None = None, seed: int = 0,
            objective: str | None = None, options: dict | None = None) -> list:
    """What the data loader calls for ``format: real`` specs. ``options.groups`` keeps some of harmful, safe,
    ordinary (e.g. ``[safe, ordinary]`` for self-distillation prompts), or names the wordplay groups (asked for by
    name only: ``[wordplay]`` for self-distillation prompts, ``[wordplay_unsafe]`` for refused SFT rows)."""
    unknown = sorted(set(options or {}) - set(REAL_OPTIONS))
    if unknown:  # a misspelt key would otherwise be dropped without a word (the toy world checks its own)
        raise DataError(f"format 'real': unknown option(s) {', '.join(map(str, unknown))}; it takes "
                        f"{', '.join(REAL_OPTIONS)}")
    split = SPLIT_ALIASES.get(split or "train", split or "train")
    if split not in SPLITS:
        raise DataError(f"format 'real': split must be train or eval, got {split!r}")
    groups = tuple((options or {}).get("groups") or GROUPS)
    bad = [g for g in groups if g not in ALL_GROUPS]
    if bad:
        raise DataError(f"format 'real': options.groups: unknown group(s) {bad}; use some of {', '.join(ALL_GROUPS)}")
    if kind in ("sft", "pairs") and set(groups) <= set(ANSWERLESS):
        raise DataError(f"format 'real': options.groups {list(groups)} are prompts only (no answers of camelid's) and "
                        f"make no {kind} rows; use them as prompts, e.g. stages.sft.self_distill, where the model "
                        "answers them itself")
    n = n or DEFAULT_N[split]
    world = RealWorld(seed)
    if kind == "prompts":
        return world.prompts(split, n, groups)
    if kind == "sft":
        return world.sft_examples(split, n, groups)
    if kind == "pairs":
        return world.preference_pairs(objective or "safety", split, n, groups)
    raise DataError(f"format 'real': unknown record kind {kind!r}; use sft, pairs or prompts")


def knowledge_prompts(n: int | None = None) -> list[Prompt]:
    """The general-knowledge check as prompts; ``meta.answers`` holds the accepted answers."""
    from camelid.data.realworld.knowledge import QUESTIONS

    return [Prompt(messages=[{"role": "user", "content": q}], is_safety=False, category="knowledge",
                   source="knowledge", id=f"knowledge-{i:03d}", meta={"kind": "knowledge", "answers": list(a)})
            for i, (q, a) in enumerate(QUESTIONS[:n])]
