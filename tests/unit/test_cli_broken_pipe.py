"""`camelid ... | head`: a reader that stops early is not the command's failure and prints no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_closed_stdout_ends_the_command_quietly():
    # `camelid config` prints hundreds of lines; the reader closes the pipe before reading any
    proc = subprocess.Popen([sys.executable, "-m", "camelid.cli", "config", "--config", str(REPO / "pipelines.yaml"),
                             "--profile", "micro"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
