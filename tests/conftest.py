"""Shared test setup: no network to any hub, quiet logs, and a micro registry with a base model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CAMELID_CACHE", str(Path(os.environ.get("TMPDIR", "/tmp")) / "camelid-test-cache"))

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def micro_base_registry(tmp_path_factory) -> Path:
    """A registry holding the micro profile's base/v1 (tokenizer + 2-layer Llama), built once per session."""
    from camelid.config import load_config
    from camelid.init_cmd import run_init
    from camelid.registry import Registry

    root = tmp_path_factory.mktemp("micro-base") / "registry"
    cfg = load_config(REPO / "pipelines.yaml", "micro", [f"registry={root}", "toy_base.eval_prompts=0"])
    run_init(cfg, Registry(root))
    return root


@pytest.fixture
def micro(tmp_path, micro_base_registry):
    """Factory: micro(*overrides) -> (PipelineConfig, Registry) on a private copy of the micro registry."""
    from camelid.config import load_config
    from camelid.registry import Registry

    root = tmp_path / "registry"
    shutil.copytree(micro_base_registry, root)

    def make(*overrides: str):
        cfg = load_config(REPO / "pipelines.yaml", "micro",
                          [f"registry={root}", f"runs_dir={tmp_path / 'runs'}", *overrides])
        return cfg, Registry(root)

    return make


@pytest.fixture
def one_torch_thread():
    """One torch thread: on a shared 2-core machine, 2 spinning threads make tiny runs ~5x slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
