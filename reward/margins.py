"""Llama 2's margin loss: -log sigmoid(r_chosen - r_rejected - m(rating)) (Touvron et al. 2023, eq. 2).

The margin grows with how clearly annotators preferred ``chosen``, so the RM is pushed to separate
"significantly better" pairs by more than "negligibly better" ones. Training uses TRL's RewardTrainer,
which applies exactly this loss when the dataset has a float ``margin`` column; `margin_loss` is the
same formula for tests and for scoring held-out pairs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from camelid.data.records import RATINGS
from camelid.errors import ConfigError

# Llama 2, Table 27: margins by rating, strongest first (RATINGS order).
MARGINS: dict[str, dict[str, float]] = {
    "none": dict.fromkeys(RATINGS, 0.0),
    "small": dict(zip(RATINGS, (1.0, 2 / 3, 1 / 3, 0.0), strict=True)),
    "large": dict(zip(RATINGS, (3.0, 2.0, 1.0, 0.0), strict=True)),
}


def margin_for(rating: str, table: str) -> float:
    """m(rating) for one of the tables none / small / large."""
    if table not in MARGINS:
        raise ConfigError(f"unknown margin table {table!r}: use one of {', '.join(MARGINS)}")
    try:
        return MARGINS[table][rating]
    except KeyError:
        raise ConfigError(f"unknown rating {rating!r}: use one of {', '.join(RATINGS)}") from None


def margin_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, margin: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Mean of -log sigmoid(r_c - r_r - m) over the batch; inputs (B,), returns a scalar."""
    return -F.logsigmoid(r_chosen - r_rejected - margin).mean()
