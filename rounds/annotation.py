"""A round's labels in the annotation app's database: simulated annotators label there as people do.

Both kinds of annotator write the same labels table (``annotations``), so one export (majority vote,
median strength, safety by vote: camelid.eval.annotate.export) makes a round's preference pairs either way.
"""

from __future__ import annotations

import json
from pathlib import Path

from camelid.data.records import Prompt
from camelid.data.toyworld.annotator import Noise, annotator_rng, pair_key, vote
from camelid.data.toyworld.oracle import is_toy_prompt
from camelid.errors import DataError
from camelid.eval.annotate.db import AnnotationDB
from camelid.registry import Artifact


def open_db(path: Path, *, fresh: bool = False) -> AnnotationDB:
    """The annotation database at ``path``, its folder made (``fresh``: remove an earlier one and its WAL files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fresh:
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            p.unlink(missing_ok=True)
    return AnnotationDB(path)


def read_items(answers: Artifact) -> list[dict]:
    """The A/B rows of a round's answers artifact."""
    from camelid.rounds.pairs import ANSWERS_FILE

    file = answers.path / ANSWERS_FILE
    if not file.is_file():
        raise DataError(f"{answers.ref} holds no {ANSWERS_FILE}: it was not made by a round's pair sampling")
    return [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]


def _prompt(pair: dict) -> Prompt:
    record = pair["meta"].get("prompt_record")
    if not record or not is_toy_prompt(record):
        raise DataError(f"pair {pair['id']} has no toy-world prompt record: simulated annotators judge with the "
                        "toy oracle, so they need toy prompts (rounds.prompts format: toy); for other prompts set "
                        "rounds.annotation.mode: human")
    return Prompt.from_dict(record)


def label_simulated(db: AnnotationDB, s) -> int:
    """Every simulated annotator (sim-1 .. sim-n) labels every pair it is served; returns the labels written.

    Each annotator's label of a pair comes from its own RNG stream (seed, annotator, pair), so the labels
    equal camelid.data.toyworld.annotator.votes() whatever order the queue serves pairs in.
    """
    noise = Noise(flip=s.flip, jitter=s.jitter, safety_flip=s.safety_flip)
    pairs = {p["id"]: p for p in db.pairs()}
    written = 0
    for i in range(s.annotators):
        user = db.user_for_token(db.add_user(f"sim-{i + 1}"))
        while (served := db.next_pair(user)) is not None:
            pair = pairs[served.pair_id]
            prompt, a, b = _prompt(pair), pair["response_a"], pair["response_b"]
            v = vote(prompt, a, b, noise, annotator_rng(s.seed, i, pair_key(prompt, a, b)), user.name)
            left_safe, right_safe = (v.a_safe, v.b_safe) if served.left_is_a else (v.b_safe, v.a_safe)
            db.submit(user, served.pair_id, preferred="left" if (v.preferred == "a") == served.left_is_a
                      else "right", strength=v.strength, left_safe=left_safe, right_safe=right_safe)
            written += 1
    return written

