"""The batch one PPO iteration learns from: rollouts plus everything computed once about them.

B = prompts in the batch (on this process), P = prompt length (left-padded), A = response length
(right-padded after EOS), T = P + A.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch


@dataclass
class Experience:
    sequences: torch.Tensor       # (B, T) token ids: left-padded prompt, then the sampled response
    attention_mask: torch.Tensor  # (B, T) 1 on prompt and response tokens, 0 on padding
    action_mask: torch.Tensor     # (B, A) 1 on response tokens up to and including EOS
    old_logprobs: torch.Tensor    # (B, A) log pi_old(a_t | s_t) of the sampled tokens (rollout policy)
    ref_logprobs: torch.Tensor    # (B, A) log pi_ref(a_t | s_t) under the frozen reference
    values: torch.Tensor          # (B, A) V_old(s_t) before each response token (0 without a value model)
    rewards: torch.Tensor         # (B, A) -beta * KL_t, plus the whitened combined score on the last token (grpo: no KL)
    advantages: torch.Tensor      # (B, A) the estimator's advantages (camelid.ppo.advantages.estimate)
    returns: torch.Tensor         # (B, A) gae: advantages + values (value targets); else the reward-to-go
    scores: torch.Tensor          # (B,) whitened combined reward R~c
    info: dict = field(default_factory=dict)  # per-sample (B,) tensors for logging: rh, rs, rc, kl, ...

    @property
    def num_actions(self) -> int:
        return self.action_mask.shape[1]

    def __len__(self) -> int:
        return self.sequences.shape[0]

    def select(self, index: torch.Tensor) -> Experience:
        """Rows ``index`` (a minibatch) of every tensor field."""
        kwargs = {f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "info"}
        return Experience(**kwargs, info={k: v[index] for k, v in self.info.items()})

    def without_padding_columns(self) -> Experience:
        """The same rows without the columns that are padding in every row (leading prompt / trailing response).

        A minibatch of random rows is often much narrower than the rollout batch, whose width the
        longest prompt and the longest response set. Padding is masked out of attention, positions
        (counted over real tokens) and every loss, so the kept tokens' outputs and the losses are unchanged.
        """
        a = self.num_actions
        p = self.sequences.shape[1] - a
        # first column holding a real token (every row has at least one prompt token)
        first = int(self.attention_mask[:, :p].any(0).long().argmax())
        used = self.action_mask.any(0).nonzero()
        keep = int(used.max()) + 1 if used.numel() else 1  # response columns up to the longest response
        if first == 0 and keep == a:
            return self
        kwargs = {}
        for f in fields(self):
            if f.name == "info":
                continue
            t = getattr(self, f.name)
            if f.name in ("sequences", "attention_mask"):  # (b, T)
                kwargs[f.name] = t[:, first:p + keep]
            elif t.dim() == 2:  # (b, A)
                kwargs[f.name] = t[:, :keep]
            else:  # (b,)
                kwargs[f.name] = t
        return Experience(**kwargs, info=self.info)
