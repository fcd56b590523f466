"""Shared fixtures for the log-sink checks: targets built from real sink configurations."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import pytest

from hipaacheck.check import CheckContext, Policy
from hipaacheck.clients import Clients
from hipaacheck.config import LogSinkConfig
from hipaacheck.model import Target, TargetKind


@pytest.fixture
def sink_target() -> Callable[..., Target]:
    def make(*paths: str, max_bytes_per_file: int = 256 * 1024 * 1024) -> Target:
        config = LogSinkConfig(name="app", paths=list(paths),
                               max_bytes_per_file=max_bytes_per_file)
        return Target(TargetKind.LOG_SINK, "logs:app", "app", config)
    return make


@pytest.fixture
def ctx() -> CheckContext:
    return CheckContext(clients=Clients(timeout=5.0), policy=Policy(),
                        logger=logging.getLogger("test.logs"),
                        clock=lambda: dt.datetime(2026, 12, 3, tzinfo=dt.UTC))
