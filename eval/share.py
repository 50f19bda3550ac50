"""How N processes split a prompt set: contiguous slices, gathered back in prompt order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Share:
    """The prompts this process handles: a contiguous slice, so joining the slices in rank order
    restores prompt order. One process: all of them."""

    n: int  # prompts in all
    rank: int = 0
    world: int = 1

    @classmethod
    def of(cls, state, n: int) -> Share:
        """This process's share under accelerate's ``state`` (None: a plain single process)."""
        return cls(n) if state is None else cls(n, state.process_index, state.num_processes)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def indices(self) -> slice:
        return slice(self.rank * self.n // self.world, (self.rank + 1) * self.n // self.world)

    def gather(self, part: list) -> list:
        """Every process's ``part`` (one item per prompt of its share) joined in prompt order, on every process."""
        if self.world == 1:
            return list(part)
        from accelerate.utils import gather_object

        return gather_object(list(part))

    def gather_array(self, part) -> np.ndarray:  # (n,) from this share's (n_share,), same dtype
        part = np.asarray(part).reshape(-1)
        return np.asarray(self.gather(part.tolist()), dtype=part.dtype)
