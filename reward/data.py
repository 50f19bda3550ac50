"""The reward stage's data: Llama 2's rules for training pairs, tokenized rows, held-out test sets.

Llama 2 §3.2.2: the safety RM drops pairs whose chosen answer is unsafe while the rejected one is safe,
and mixes in a share of helpfulness data; each pair's rating level sets its margin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from camelid.data.records import PreferencePair
from camelid.errors import ConfigError, DataError
from camelid.log import get_logger
from camelid.reward.config import RewardModelConfig
from camelid.reward.margins import margin_for
from camelid.reward.rules import drop_unsafe_chosen, mix_in
from camelid.reward.scoring import tokenize
from camelid.reward.trainer import safe_label

log = get_logger("reward")


def other_objective(objective: str) -> str:
    return "safety" if objective == "helpfulness" else "helpfulness"


@dataclass
class TestSet:
    objective: str                 # whose held-out pairs these are
    pairs: list[PreferencePair]
    fingerprint: str
    dropped_unsafe_chosen: int = 0


@dataclass
class Prepared:
    """Everything setup() builds; counts go to the log and the manifest."""

    rows: list[dict]               # tokenized training rows for RewardTrainer
    counts: dict
    fingerprints: dict[str, str]
    test_sets: list[TestSet] = field(default_factory=list)


# ---- setup: data --------------------------------------------------------------------------------------

def _load_pairs(spec) -> tuple[list[PreferencePair], str, str]:
    from camelid.data.load import load_records

    result = load_records(spec, "pairs")
    return list(result.records), result.fingerprint, result.summary()


def select_training_pairs(rm: RewardModelConfig, *, seed: int, transform=None
                          ) -> tuple[list[PreferencePair], dict, dict]:
    """Load data (+ mix_data) and apply Llama 2's rules: (pairs, counts, fingerprints).

    ``transform(pairs) -> (pairs, counts)``, if given, rewrites ``data``'s pairs (not mix_data's) right after loading
    (the DPO stage's own_answers); its counts join the returned ones."""
    pairs, fp, summary = _load_pairs(rm.data)
    log.info("train data %s", summary)
    counts: dict = {"loaded": len(pairs)}
    fps = {"train": fp}
    if transform is not None:
        pairs, counts["own_answers"] = transform(pairs)
    if rm.drop_unsafe_chosen:
        pairs, counts["dropped_unsafe_chosen"] = drop_unsafe_chosen(pairs)
    if rm.mix_share > 0:
        if rm.mix_data is None:
            raise ConfigError(f"mix_share={rm.mix_share} but no mix_data: name the other objective's pairs in "
                              "mix_data, or set mix_share=0")
        other, fps["mix"], summary = _load_pairs(rm.mix_data)
        log.info("mix data %s", summary)
        counts["mix_loaded"] = len(other)
        if rm.drop_unsafe_chosen:  # the rule is about what this RM learns, wherever the pair came from
            other, counts["mix_dropped_unsafe_chosen"] = drop_unsafe_chosen(other)
        pairs, counts["mix_added"] = mix_in(pairs, other, rm.mix_share, seed=seed)
    elif rm.mix_data is not None:
        log.info("mix_data is set but mix_share is 0: nothing mixed in")
    if not pairs:
        raise DataError(f"no training pairs left after the data rules ({counts}); check data / drop_unsafe_chosen")
    return pairs, counts, fps


def tokenize_pairs(tokenizer, pairs: list[PreferencePair], margin_table: str, max_length: int
                   ) -> tuple[list[dict], int]:
    """RewardTrainer rows (chosen_ids, rejected_ids, margin, safety labels) and how many were too long.

    RewardTrainer would drop over-long pairs silently; dropping them here with the same rule lets us
    count them (and its own filter then finds nothing to drop).
    """
    rows, too_long = [], 0
    for p in pairs:
        c, r = tokenize(tokenizer, p.prompt, p.chosen), tokenize(tokenizer, p.prompt, p.rejected)
        if len(c) > max_length or len(r) > max_length:
            too_long += 1
            continue
        rows.append({"chosen_ids": c, "rejected_ids": r, "margin": margin_for(p.rating, margin_table),
                     "chosen_safe": safe_label(p.chosen_safe), "rejected_safe": safe_label(p.rejected_safe)})
    return rows, too_long


def load_test_sets(objective: str, own: RewardModelConfig, other: RewardModelConfig | None) -> list[TestSet]:
    """This objective's eval_data (from ``own``, the job's section), then the other objective's (from ``other``,
    its section: Table 8 crosses both RMs and both sets)."""
    out = []
    for obj, rm in ((objective, own), (other_objective(objective), other)):
        if rm is None or rm.eval_data is None:
            continue
        pairs, fp, summary = _load_pairs(rm.eval_data)
        log.info("%s test set %s", obj, summary)
        dropped = 0
        if rm.drop_unsafe_chosen:  # the same rule defines what "correct" means on the safety test set
            pairs, dropped = drop_unsafe_chosen(pairs)
        out.append(TestSet(obj, pairs, fp, dropped))
    return out


def prepare(objective: str, tokenizer, rm: RewardModelConfig, other: RewardModelConfig | None) -> Prepared:
    """Training rows and test sets; ``rm`` is the job's own section, ``other`` the other objective's."""
    pairs, counts, fps = select_training_pairs(rm, seed=rm.seed)
    rows, counts["dropped_too_long"] = tokenize_pairs(tokenizer, pairs, rm.margin, rm.max_length)
    counts["train_pairs"] = len(rows)
    if not rows:
        raise DataError(f"all {len(pairs)} training pairs are longer than max_length={rm.max_length} tokens; "
                        "raise stages.reward.<objective>.max_length")
    tests = load_test_sets(objective, rm, other)
    for t in tests:
        fps[f"eval_{t.objective}"] = t.fingerprint
        counts[f"eval_{t.objective}_pairs"] = len(t.pairs)
        if t.dropped_unsafe_chosen:
            counts[f"eval_{t.objective}_dropped_unsafe_chosen"] = t.dropped_unsafe_chosen
    log.info("reward-%s data: %s", objective, ", ".join(f"{k}={v}" for k, v in counts.items()))
    return Prepared(rows, counts, fps, tests)
