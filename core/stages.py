"""The pipeline's jobs: for each stage, its output name, config section and input refs.

One source of truth for `camelid run` (which skips a job when an artifact with the same config hash
and the same input hashes exists) and for the stage recipes (which publish with exactly this section
and these inputs, so that the skip check matches what they wrote).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from camelid.config import PipelineConfig
from camelid.errors import ConfigError
from camelid.registry import config_hash

# stage -> (module with `run(cfg, registry, **kwargs) -> Artifact`, issue that builds it)
STAGE_MODULES = {
    "init": ("camelid.init_cmd", 3),
    "sft": ("camelid.sft.recipe", 4),
    "reward": ("camelid.reward.recipe", 5),
    "ppo": ("camelid.ppo.recipe", 6),
    "compare": ("camelid.eval.compare", 8),
}


@dataclass
class Job:
    stage: str              # init | sft | reward | ppo | compare
    name: str               # display name, e.g. reward-safety
    output: str             # registry name it publishes
    section: dict           # resolved config section (hashed into config_hash)
    inputs: dict[str, str]  # role -> ref
    kwargs: dict = field(default_factory=dict)

    @property
    def module(self) -> str:
        return STAGE_MODULES[self.stage][0]

    @property
    def issue(self) -> int:
        return STAGE_MODULES[self.stage][1]


def jobs(cfg: PipelineConfig) -> list[Job]:
    """The jobs of cfg.pipeline, in order."""
    s = cfg.stages
    out: list[Job] = []
    for stage in cfg.pipeline:
        if stage == "init":
            # Only when SFT starts from the toy base; real profiles start from a Hub model.
            if s.sft.model.partition("@")[0] == cfg.toy_base.output:
                out.append(Job("init", "init", cfg.toy_base.output, cfg.toy_base.model_dump(mode="json"), {},
                               {"force": True}))
        elif stage == "sft":
            out.append(Job("sft", "sft", s.sft.output, s.sft.model_dump(mode="json"), {"model": s.sft.model}))
        elif stage == "reward":
            for obj in s.reward.objectives:
                rm = getattr(s.reward, obj)
                out.append(Job("reward", f"reward-{obj}", rm.output, rm.model_dump(mode="json"),
                               {"init": rm.init}, {"objective": obj}))
        elif stage == "ppo":
            p = s.ppo
            inputs = {"policy": p.policy, "reward_helpfulness": p.reward_helpfulness,
                      "reward_safety": p.reward_safety, "value_init": p.value_init}
            if p.reference:
                inputs["reference"] = p.reference
            out.append(Job("ppo", "ppo", p.output, p.model_dump(mode="json"), inputs))
        elif stage == "compare":
            c = s.compare
            inputs = {f"checkpoint{i}": ref for i, ref in enumerate(c.checkpoints)}
            for role in ("reward_helpfulness", "reward_safety", "reference"):
                if getattr(c, role):
                    inputs[role] = getattr(c, role)
            out.append(Job("compare", "compare", c.output, c.model_dump(mode="json"), inputs))
        else:
            raise ConfigError(f"pipeline: unknown stage {stage!r}; stages: {', '.join(STAGE_MODULES)}")
    return out


def job_for(cfg: PipelineConfig, name: str) -> Job:
    """The job called ``name`` (sft, reward-helpfulness, ...) even if cfg.pipeline leaves it out."""
    full = cfg.model_copy(update={"pipeline": list(STAGE_MODULES)})
    for job in jobs(full):
        if job.name == name:
            return job
    raise ConfigError(f"no job named {name!r}")


def run_dir(cfg: PipelineConfig, job: Job, inputs: dict) -> Path:
    """Checkpoint folder of a job: the same config and inputs give the same folder, so --resume finds it."""
    key = config_hash({"section": job.section, "inputs": {role: a.hash for role, a in sorted(inputs.items())}})
    return cfg.runs_path() / job.name / key
