"""What the processes of a PPO run do together: sums and means over processes, and the NaN/inf check.

With several processes every helper here is a collective: all of them must call it at the same point
(the NaN/inf check included, so that every process stops at the same step instead of one hanging).
"""

from __future__ import annotations

import torch

from camelid.errors import TrainingDiverged


class NonFinite(TrainingDiverged):
    """``what`` held NaN/inf on some process; PPOTrainer re-raises it naming the iteration and last checkpoint."""

    def __init__(self, what: str):
        super().__init__(f"{what} is NaN or inf")
        self.what = what


def sum_over_processes(acc, t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over every process (``t`` itself with one process)."""
    return acc.reduce(t.to(acc.device), "sum") if acc.num_processes > 1 else t


def mean_over_processes(acc, stats: dict[str, float]) -> dict[str, float]:
    """Each value of ``stats`` averaged over every process (the same keys on each)."""
    if acc.num_processes == 1 or not stats:
        return stats
    keys = sorted(stats)
    t = torch.tensor([stats[k] for k in keys], dtype=torch.float64, device=acc.device)
    t = acc.reduce(t, "mean")
    return dict(zip(keys, t.tolist()))


def ensure_finite(acc, what: str, *tensors: torch.Tensor) -> None:
    """Raise NonFinite on every process if any of ``tensors`` holds NaN/inf on any process."""
    bad = torch.tensor([float(not torch.isfinite(t.detach()).all()) for t in tensors] or [0.0],
                       device=acc.device).sum()
    if sum_over_processes(acc, bad).item() > 0:
        raise NonFinite(what)
