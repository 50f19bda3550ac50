"""Logging for the CLIs: one format, INFO by default, CAMELID_LOG_LEVEL to change it."""

from __future__ import annotations

import logging
import os

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
