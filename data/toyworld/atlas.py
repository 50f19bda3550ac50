"""A generated atlas of fictional countries, deterministic from the world's seed.

Each country has a capital, a main river, a language (derived from the country's name, so a small model
can learn the rule) and a population in millions. Names within one attribute are at least two edits apart,
so a one-letter near-miss is never another country's true answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from camelid.data.toyworld.detect import FRAME_WORDS, PAYLOAD_WORDS, within_one_edit

N_COUNTRIES = 40
_ONSETS = ("b", "d", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "th", "sh", "dr", "kr", "st")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou")
_CODAS = ("", "", "n", "r", "l", "s", "m", "k")
_COUNTRY_ENDS = ("ia", "or", "and", "ea", "ania", "istan", "ova")
_LANG_ENDS = ("ese", "ish", "ic")


@dataclass(frozen=True)
class Country:
    name: str
    capital: str
    river: str
    language: str
    population: int  # millions


@dataclass(frozen=True)
class Atlas:
    countries: tuple[Country, ...]
    _others: dict = field(default_factory=dict, compare=False, repr=False)  # cache for `others`

    def values(self, attribute: str) -> tuple[str, ...]:
        return tuple(str(getattr(c, attribute)) for c in self.countries)

    def others(self, attribute: str, i: int) -> tuple[str, ...]:
        """The attribute's values for every country but country i (the wrong answers to a lookup)."""
        key = (attribute, i)
        if key not in self._others:
            self._others[key] = tuple(v for j, v in enumerate(self.values(attribute)) if j != i)
        return self._others[key]

    def facts(self) -> list[str]:
        """One sentence per fact, for the tokenizer corpus."""
        return [f"The capital of {c.name} is {c.capital}. The main river is the {c.river}. "
                f"People there speak {c.language}. {c.name} has about {c.population} million people."
                for c in self.countries]


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables))


def _distinct(candidate: str, taken: set[str]) -> bool:
    low = candidate.lower()
    return (4 <= len(low) <= 12 and low not in taken and low not in PAYLOAD_WORDS
            and not any(within_one_edit(low, t) for t in taken))


def build_atlas(seed: int, n: int = N_COUNTRIES) -> Atlas:
    """The atlas of world `seed` (same seed, same atlas)."""
    rng = random.Random(f"camelid-toy/{seed}/atlas")
    taken: set[str] = set(FRAME_WORDS)

    def fresh(make) -> str:
        while True:
            w = make()
            if _distinct(w, taken):
                taken.add(w.lower())
                return w.capitalize()

    countries = []
    while len(countries) < n:
        root = _word(rng, rng.choice((1, 2)))
        name, language = root + rng.choice(_COUNTRY_ENDS), root + rng.choice(_LANG_ENDS)
        if not (_distinct(name, taken) and _distinct(language, taken | {name.lower()})):
            continue  # a fresh root; fixed roots could otherwise loop forever
        taken.update((name.lower(), language.lower()))
        capital = fresh(lambda: _word(rng, 2))
        river = fresh(lambda: _word(rng, 2))
        countries.append(Country(name.capitalize(), capital, river, language.capitalize(), rng.randint(2, 95)))
    return Atlas(tuple(countries))
