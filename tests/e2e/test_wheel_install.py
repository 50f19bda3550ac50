"""Installable anywhere: the built wheel in a fresh venv, in an empty folder, runs the micro pipeline from
the packaged pipelines.yaml, copies it with init-config, exports a checkpoint and evaluates it with lm-eval.

The fresh venv reuses this environment's dependencies through a .pth file (no download), added after camelid
is installed so pip neither sees nor touches the editable install here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TASK = REPO / "tests" / "fixtures" / "lm_eval" / "camelid_toy_mc.yaml"

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} failed ({out.returncode}):\n{out.stdout}\n{out.stderr[-4000:]}"
    return out


def _working_tree(dest: Path) -> Path:
    """The files git would commit (tracked + untracked, not ignored): no stale build/ or registries."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file() and not name.startswith(("tests/", "bench/")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict]:
    """(bin folder of a fresh venv with the camelid wheel, environment to run it with)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = _working_tree(tmp / "src")
    pip = [sys.executable, "-m", "pip"]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONWARNINGS": "ignore"}
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"), str(src)], tmp, env)
    wheel = next((tmp / "dist").glob("camelid-*.whl"))
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, env)
    python = venv / "bin" / "python"
    _run([*pip, "--python", str(python), "install", "--no-deps", "-q", str(wheel)], tmp, env)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "outer-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run_env = {**env, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
               "PATH": f"{venv / 'bin'}:{env['PATH']}"}
    run_env.pop("CAMELID_CONFIG", None)
    run_env.pop("PYTHONPATH", None)
    return venv / "bin", run_env


def test_wheel_in_an_empty_folder_runs_exports_and_evaluates(installed, tmp_path):
    bin_dir, env = installed
    camelid = str(bin_dir / "camelid")
    where = subprocess.run([str(bin_dir / "python"), "-c", "import camelid; print(camelid.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path).stdout
    assert str(bin_dir.parent) in where  # the wheel's camelid, not this checkout's

    work = tmp_path / "empty"
    work.mkdir()
    run = _run([camelid, "run", "--profile", "micro"], work, env, timeout=600)
    first = run.stderr.splitlines()[0]
    assert "no ./pipelines.yaml here: using the one packaged with camelid" in first
    assert str(bin_dir.parent / "share" / "camelid" / "pipelines.yaml") in first
    assert (work / "registry-micro" / "ppo" / "v1" / "manifest.json").is_file()  # relative to here, not the venv

    out = _run([camelid, "export", "ppo", "hf-ppo", "--profile", "micro"], work, env)
    assert out.stdout.strip() == "hf-ppo"
    for name in ("model.safetensors", "config.json", "tokenizer.json", "generation_config.json", "README.md"):
        assert (work / "hf-ppo" / name).is_file(), name
    assert "report@v1" in (work / "hf-ppo" / "README.md").read_text()  # the pipeline's compare report, in the card

    shutil.copytree(TASK.parent, work / "tasks")
    out = _run([camelid, "eval", "ppo", "--profile", "micro", "--tasks", "tasks/camelid_toy_mc.yaml"], work, env)
    assert out.stdout.splitlines()[0] == "eval-ppo@v1"
    manifest = json.loads((work / "registry-micro" / "eval-ppo" / "v1" / "manifest.json").read_text())
    assert set(manifest["metrics"]["tasks"]) == {"camelid_toy_mc"}

    out = _run([camelid, "init-config"], work, env)
    assert "wrote pipelines.yaml" in out.stdout and (work / "configs" / "fsdp.yaml").is_file()
    shipped = bin_dir.parent / "share" / "camelid"
    assert (work / "pipelines.yaml").read_bytes() == (shipped / "pipelines.yaml").read_bytes()
    again = subprocess.run([camelid, "init-config"], cwd=work, env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "nothing written" in again.stderr  # never over an existing file
    out = _run([camelid, "config", "--profile", "micro"], work, env)
    assert "no ./pipelines.yaml" not in out.stderr  # the local copy is read now
