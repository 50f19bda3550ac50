"""Logging for the CLIs: one format, INFO by default, CAMELID_LOG_LEVEL to change it."""

from __future__ import annotations

import logging
import os
import sys

_configured = False


def get_logger(name: str) -> logging.Logger:
    global _configured
    if not _configured:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
        root = logging.getLogger("camelid")
        root.addHandler(handler)
        root.setLevel(os.environ.get("CAMELID_LOG_LEVEL", "INFO").upper())
        root.propagate = False
        _configured = True
    return logging.getLogger(f"camelid.{name}")


# Library messages that say nothing a camelid user can act on: demoted to camelid's debug log.
_NOISE = {
    # Trainer's checkpoint sort on filesystems with coarse mtimes: it sorts by step number instead, as we do.
    "transformers.trainer_utils": ("mtime may not be reliable",),
    # A tied LM head (SmolLM2, the toy Llama) is saved once, as the embedding, and tied again on load.
    "transformers.trainer": ("There were missing keys in the checkpoint model loaded: ['lm_head.weight']",),
}


class _Demote(logging.Filter):
    """Drop a known-noise record from its library logger and log it at debug level under camelid.libraries."""

    def __init__(self, needles: tuple[str, ...]):
        super().__init__()
        self.needles = needles

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if any(n in msg for n in self.needles):
            get_logger("libraries").debug("%s: %s", record.name, msg)
            return False
        return True


def quiet_output(stream=None) -> None:
    """Before a command runs: no progress bars unless ``stream`` (stderr) is a terminal, as tqdm's
    ``disable=None`` does (redirected, their frames interleave with log lines), and library noise demoted.

    Must run before tqdm is imported: tqdm reads TQDM_* defaults from the environment at import.
    """
    stream = stream if stream is not None else sys.stderr
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty:
        os.environ.setdefault("TQDM_DISABLE", "1")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    for name, needles in _NOISE.items():
        lg = logging.getLogger(name)
        if not any(isinstance(f, _Demote) for f in lg.filters):
            lg.addFilter(_Demote(needles))
