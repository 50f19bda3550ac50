"""The DPO stage's pairs: the reward models' pairs, rows for TRL's DPOTrainer, and how ratings enter.

Which pairs: `camelid.reward.data.select_training_pairs`, the safety reward model's own rules, so `data` +
`mix_data` at `mix_share` with `drop_unsafe_chosen` give DPO exactly the pairs a safety RM would see
(Llama 2 §3.2.2). A profile that names both RMs' pairs (safety as `data`, helpfulness as `mix_data`)
trains the policy on what the two reward models learn from, without the reward models.

How Llama 2's four rating levels enter. The reward models read a rating as a margin:
-log sigmoid(r_c - r_r - m(rating)). DPO's implicit reward is r = beta * log(pi / pi_ref), so the same
margin on it is -log sigmoid(beta * (log-ratio_c - log-ratio_r) - m): DPO with an offset (ODPO, Amini et
al. 2024). TRL's DPOTrainer has no margin column, but it reads precomputed reference log-probs from the
dataset; adding m / beta to each pair's reference log-prob of the chosen answer is exactly that offset
(`with_margins`). `margin: none` (the default) is plain DPO, where ratings do not enter; `min_rating`
drops the weakest levels instead: in the toy world "negligibly better" pairs are mostly two equally good
answers, and plain DPO pushes one of them down as hard as it pushes a refusal below an answer. Measured on
the toy world (docs/experiments/dpo.md), neither helped: the margins changed nothing visible, and dropping that
level left some over-refusal that plain DPO removed. The held-out pairs are scored without the offset: their
loss and accuracy are plain DPO's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from camelid.data.records import RATINGS, PreferencePair
from camelid.errors import DataError
from camelid.log import get_logger
from camelid.reward.data import select_training_pairs
from camelid.reward.margins import margin_for
from camelid.reward.scoring import tokenize

log = get_logger("dpo")
MARGIN = "margin"  # the rows' column of Llama 2 margins (folded into the reference log-probs, then dropped)


@dataclass
class PreparedPairs:
    """Rows for DPOTrainer and what became of the pairs on the way (counts go to the manifest)."""

    train: list[dict]
    eval: list[dict] | None
    counts: dict
    fingerprints: dict[str, str] = field(default_factory=dict)


def at_least(pairs: list[PreferencePair], min_rating: str) -> tuple[list[PreferencePair], int]:
    """(pairs rated ``min_rating`` or stronger, how many were dropped)."""
    keep = set(RATINGS[:RATINGS.index(min_rating) + 1])
    kept = [p for p in pairs if p.rating in keep]
    return kept, len(pairs) - len(kept)


def to_rows(tokenizer, pairs: list[PreferencePair], *, margin: str, max_length: int) -> tuple[list[dict], int]:
    """Conversational rows {prompt, chosen, rejected, margin} and how many pairs were longer than max_length.

    Lengths are counted as the reward models count them (the chat template over prompt + answer), so one
    max_length keeps the same pairs in both stages. TRL would truncate a longer pair; a cut answer would be
    trained as if it ended there, so it is dropped and counted instead.
    """
    rows, too_long = [], 0
    for p in pairs:
        if max(len(tokenize(tokenizer, p.prompt, p.chosen)), len(tokenize(tokenizer, p.prompt, p.rejected))) \
                > max_length:
            too_long += 1
            continue
        rows.append({"prompt": p.prompt, "chosen": [{"role": "assistant", "content": p.chosen}],
                     "rejected": [{"role": "assistant", "content": p.rejected}],
                     MARGIN: margin_for(p.rating, margin)})
    return rows, too_long


def prepare(dc, tokenizer, where: str, transform=None) -> PreparedPairs:
    """Training rows (the safety RM's pair rules, then min_rating and max_length) and held-out rows.
    ``transform`` rewrites ``data``'s pairs after loading (own_answers: camelid.dpo.own)."""
    from camelid.data.load import load_records

    pairs, counts, fps = select_training_pairs(dc, seed=dc.seed, transform=transform)
    pairs, counts["dropped_below_min_rating"] = at_least(pairs, dc.min_rating)
    counts["ratings"] = {r: sum(p.rating == r for p in pairs) for r in RATINGS}
    train, counts["dropped_too_long"] = to_rows(tokenizer, pairs, margin=dc.margin, max_length=dc.max_length)
    if not train:
        raise DataError(f"{where}: no training pairs left: {len(pairs)} after the pair rules, "
                        f"{counts['dropped_too_long']} of them longer than max_length={dc.max_length} tokens "
                        f"({counts}); raise {where}.max_length or lower {where}.min_rating")
    counts["train_pairs"] = len(train)
    held_out = None
    if dc.eval_data is not None:
        loaded = load_records(dc.eval_data, "pairs")
        fps["eval"] = loaded.fingerprint
        held_out, counts["eval_dropped_too_long"] = to_rows(tokenizer, list(loaded.records), margin="none",
                                                            max_length=dc.max_length)
        counts["eval_pairs"] = len(held_out)
        if not held_out:
            raise DataError(f"{where}.eval_data: all {loaded.kept} held-out pairs are longer than max_length="
                            f"{dc.max_length} tokens; raise {where}.max_length or set eval_data: null")
    log.info("dpo pairs: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
    return PreparedPairs(train, held_out, counts, fps)


def with_margins(dataset, beta: float):
    """A DPOTrainer dataset (precomputed reference log-probs) with each pair's margin as ODPO's offset.

    loss = -log sigmoid(beta * ((c - ref_c) - (r - ref_r))); with ref_c + m / beta in place of ref_c it is
    -log sigmoid(beta * (...) - m). Pairs with margin 0 are unchanged. Computed in memory on every process.
    """
    if MARGIN not in dataset.column_names:
        return dataset
    offsets = [m / beta for m in dataset[MARGIN]]
    if not any(offsets):
        return dataset.remove_columns(MARGIN)
    shifted = [ref + o for ref, o in zip(dataset["ref_chosen_logps"], offsets)]
    feature = dataset.features["ref_chosen_logps"]  # float32: a float64 column would make the loss float64
    return dataset.remove_columns(["ref_chosen_logps", MARGIN]).add_column("ref_chosen_logps", shifted,
                                                                            feature=feature)
