"""camelid's general-knowledge check: short questions about well-known facts, scored by answer match.

Written for camelid, for evaluation only (never trained on): it measures the knowledge an SFT costs
(Llama 2's "alignment tax"). A question is answered right when one of its accepted answers appears, as
whole words, in the first ``MATCH_WORDS`` words of the normalised answer (lower case, punctuation dropped);
a model that hedges over several candidates can still match, which the check accepts as a known limit.
"""

from __future__ import annotations

import re

MATCH_WORDS = 40

# (question, accepted answers). Facts differ from parts.FACT_QUESTIONS (the self-distillation prompts).
QUESTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("What is the capital of France?", ("paris",)),
    ("What is the capital of Japan?", ("tokyo",)),
    ("What is the capital of Italy?", ("rome",)),
    ("What is the capital of Germany?", ("berlin",)),
    ("What is the capital of Australia?", ("canberra",)),
    ("What is the capital of Russia?", ("moscow",)),
    ("What is the capital of the United Kingdom?", ("london",)),
    ("What is the capital of China?", ("beijing",)),
    ("What is the capital of Greece?", ("athens",)),
    ("What is the capital of Mexico?", ("mexico city",)),
    ("What is the chemical symbol for gold?", ("au",)),
    ("What is the chemical symbol for sodium?", ("na",)),
    ("What is the chemical symbol for iron?", ("fe",)),
    ("Which gas do humans need to breathe to live?", ("oxygen",)),
    ("What is the largest planet in our solar system?", ("jupiter",)),
    ("Which planet is closest to the sun?", ("mercury",)),
    ("What is the closest star to Earth?", ("sun", "the sun")),
    ("How many legs does an insect have?", ("six", "6")),
    ("How many sides does a hexagon have?", ("six", "6")),
    ("How many minutes are in an hour?", ("sixty", "60")),
    ("How many days are in a week?", ("seven", "7")),
    ("What is 12 times 12?", ("144",)),
    ("What is the boiling point of water in degrees Celsius at sea level?", ("100",)),
    ("What is the largest desert in Africa?", ("sahara",)),
    ("What is the longest river in Africa?", ("nile",)),
    ("Which ocean lies between Europe and North America?", ("atlantic",)),
    ("On which continent is Brazil?", ("south america",)),
    ("What is the largest country in the world by area?", ("russia",)),
    ("Who wrote Pride and Prejudice?", ("austen",)),
    ("Who wrote the play Hamlet?", ("shakespeare",)),
    ("Who painted the Mona Lisa?", ("leonardo", "da vinci")),
    ("Who developed the theory of relativity?", ("einstein",)),
    ("Who proposed the theory of evolution by natural selection?", ("darwin",)),
    ("Who was the first president of the United States?", ("washington",)),
    ("Who invented the telephone?", ("bell",)),
    ("In which year did World War II end?", ("1945",)),
    ("In which year did the Titanic sink?", ("1912",)),
    ("Which country gave the Statue of Liberty to the United States?", ("france",)),
    ("What is the main language spoken in Argentina?", ("spanish",)),
    ("What is the currency of the United Kingdom?", ("pound",)),
    ("What is the largest organ of the human body?", ("skin",)),
    ("How many bones are in the adult human body?", ("206",)),
    ("What part of the plant makes food by photosynthesis?", ("leaf", "leaves")),
    ("What do bees make?", ("honey",)),
    ("What is frozen water called?", ("ice",)),
    ("What color do you get by mixing blue and yellow?", ("green",)),
    ("Which animal is known as the king of the jungle?", ("lion",)),
    ("What is the fastest land animal?", ("cheetah",)),
    ("How many strings does a standard violin have?", ("four", "4")),
    ("Which instrument has 88 keys?", ("piano",)),
    ("What is the hottest planet in our solar system?", ("venus",)),
    ("What force keeps us on the ground?", ("gravity",)),
    ("What is the smallest prime number?", ("two", "2")),
    ("What is the opposite of the word 'ancient'?", ("modern", "new")),
    ("Which metal is liquid at room temperature?", ("mercury",)),
    ("What is the tallest animal in the world?", ("giraffe",)),
    ("In which city is the Colosseum?", ("rome",)),
    ("Which country is home to the kangaroo?", ("australia",)),
    ("What do you call a baby dog?", ("puppy",)),
    ("How many hours are in a day?", ("twenty-four", "twenty four", "24")),
)

_NON_WORD = re.compile(r"[^a-z0-9\s-]")


def normalize(text: str) -> str:
    """Lower case, punctuation dropped (hyphens kept), single spaces."""
    return " ".join(_NON_WORD.sub(" ", text.lower().replace("\u2019", "'")).split())


def is_correct(response: str, answers: list[str] | tuple[str, ...]) -> bool:
    """True if an accepted answer appears as whole words in the response's first MATCH_WORDS words."""
    head = " " + " ".join(normalize(response).split()[:MATCH_WORDS]) + " "
    return any(f" {normalize(a)} " in head for a in answers)
