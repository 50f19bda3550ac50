"""DataSpec: how pipelines.yaml names a data source (toy world, a local file, a Hub dataset)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

RecordKind = Literal["sft", "pairs", "prompts"]


class DataSpec(BaseModel):
    """One data source. A stage's ``data`` is one spec or a list of them (a weighted mixture)."""

    model_config = ConfigDict(extra="forbid")

    format: str = Field(
        "toy",
        description="Adapter name: toy, messages, alpaca, self-instruct, hh-rlhf, pku-saferlhf, xstest, "
        "oasst, gsm8k, mt-bench, arena-hard, preference (canonical pair JSONL), prompts (canonical prompt JSONL), "
        "or auto (detect from the first row).",
    )
    path: str | None = Field(
        None,
        description="Local .jsonl/.json/.parquet/.csv file or folder, 'registry:<ref>' for a dataset artifact "
        "(e.g. registry:prefs@v1 from `camelid annotate export --publish prefs`), 'hf:<dataset id>' for the "
        "Hugging Face Hub, or 'builtin:<file>' for a data file shipped with camelid (its data/seed folder, e.g. "
        "builtin:real_safety_sft.jsonl; a wrong name lists them). Not used by format 'toy'.",
    )
    split: str | None = Field(
        None, description="Split: for toy one of train/heldout (SFT, pairs) or ppo/eval (prompts); for hf: the "
        "dataset split name."
    )
    n: int | None = Field(None, ge=1, description="Use at most this many records (toy: how many to generate).")
    seed: int = Field(0, description="Seed for generation (toy) and for sampling/shuffling.")
    weight: float = Field(1.0, gt=0, description="Relative weight of this source in a mixture.")
    objective: Literal["helpfulness", "safety"] | None = Field(
        None, description="For preference data: which reward model the pairs are for (toy world, PKU-SafeRLHF)."
    )
    columns: dict[str, str] = Field(
        default_factory=dict, description="Column mapping for custom files: {canonical field: column in file}."
    )
    on_error: Literal["raise", "skip"] = Field(
        "raise", description="raise: stop at the first bad row with file:line; skip: drop bad rows and report "
        "a count with sample reasons."
    )
    max_chars: int | None = Field(
        100_000, ge=1, description="Longest text field (a message, chosen, rejected) in characters; a longer row "
        "is a bad row (stop, or drop and count it with on_error: skip) instead of reaching the tokenizer whole. "
        "null: no limit."
    )
    options: dict[str, Any] = Field(default_factory=dict, description="Adapter-specific options.")
    # Not a setting (never dumped or hashed): the spec was written on a command line (FORMAT:PATH), so
    # messages name its flags rather than pipelines.yaml keys.
    _from_cli: bool = PrivateAttr(False)

    @property
    def from_cli(self) -> bool:
        return self._from_cli

    def on_command_line(self) -> DataSpec:
        self._from_cli = True
        return self

    def __eq__(self, other: object) -> bool:  # where a spec was written is no part of what it is
        if not isinstance(other, DataSpec):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # mutable, as pydantic models are
