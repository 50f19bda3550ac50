from __future__ import annotations

import subprocess
import sys

from camelid.cli import _help_lines, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    rows = _help_lines()
    assert {"sft", "reward", "ppo", "compare", "init", "run", "registry"} <= {name for name, _ in rows}
    for name, help_ in rows:
        assert f"  {name}" in out and help_ in out


def test_unknown_command(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "camelid.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "camelid COMMAND" in out.stdout


HELP_IMPORTS = """
import contextlib, io, sys
from camelid.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    rc = main(["--help"])
heavy = {"torch", "transformers", "trl", "datasets", "peft", "accelerate"}
print(rc, "camelid COMMAND" in out.getvalue(), sorted({m.split(".")[0] for m in sys.modules} & heavy))
"""


def test_help_imports_no_torch():
    """`camelid --help` loads every stage's declaration but no training library, so it answers in well under a
    second (8-9 s when a declaration imported torch)."""
    out = subprocess.run([sys.executable, "-c", HELP_IMPORTS], capture_output=True, text=True)
    assert out.stdout.strip() == "0 True []", out.stdout + out.stderr


def test_registry_ls_and_show(tmp_path, capsys):
    from camelid.registry import Registry

    reg = Registry(tmp_path)
    with reg.publish("prefs", "dataset", config={"k": 1}) as pub:
        (pub.dir / "x.txt").write_text("x")
        pub.metrics["accuracy"] = 0.75
    assert main(["registry", "--registry", str(tmp_path), "ls"]) == 0
    out = capsys.readouterr().out
    assert "prefs@v1" in out and "dataset" in out and "[latest]" in out and "accuracy=0.75" in out
    assert main(["registry", "--registry", str(tmp_path), "show", "prefs@v1"]) == 0
    assert '"config_hash"' in capsys.readouterr().out
    assert main(["registry", "--registry", str(tmp_path), "show", "nope"]) == 2
    assert "unknown reference 'nope'" in capsys.readouterr().err


def test_config_error_exits_2_with_path(repo, capsys):
    assert main(["config", "--config", str(repo / "pipelines.yaml"), "--profile", "micro",
                 "stages.ppo.kl_coef=-1"]) == 2
    assert "stages.ppo.kl_coef: must be > 0" in capsys.readouterr().err


def test_run_dry_run_on_a_fresh_registry_lists_every_job(micro, repo, caplog):
    """Later jobs read what earlier ones would publish: a dry run says they would run instead of failing
    on the not-yet-published input (seen on a fresh registry-smol: 'unknown reference rm-helpfulness')."""
    cfg, reg = micro()
    argv = ["run", "--config", str(repo / "pipelines.yaml"), "--profile", "micro", "--registry", str(reg.root),
            f"runs_dir={reg.root.parent / 'runs'}", "--dry-run"]
    with caplog.at_level("INFO", logger="camelid"):
        assert main(argv) == 0
    for job, out in [("sft", "sft"), ("reward-helpfulness", "rm-helpfulness"), ("ppo", "ppo"), ("compare", "report")]:
        assert f"[{job}] would run -> {out}" in caplog.text
    assert reg.names() == ["base"]  # nothing was built or published
