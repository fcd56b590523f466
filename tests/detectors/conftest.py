"""Shared fixtures for the detector tests: one detector per engine, under a fixed key."""

from __future__ import annotations

import datetime as dt

import pytest

from hipaacheck.detectors.phi import PhiDetector, available_engines
from hipaacheck.redact import Fingerprinter

TODAY = dt.date(2026, 12, 3)
ENGINES = available_engines()
"""Every engine installed here: `re` always, RE2 and Hyperscan where their wheels are."""


@pytest.fixture(scope="session")
def fingerprinter() -> Fingerprinter:
    return Fingerprinter(b"k" * 32)


@pytest.fixture(scope="session")
def engines(fingerprinter: Fingerprinter) -> dict[str, PhiDetector]:
    return {e: PhiDetector(engine=e, fingerprinter=fingerprinter, today=TODAY) for e in ENGINES}


@pytest.fixture(params=ENGINES)
def detector(request: pytest.FixtureRequest, engines: dict[str, PhiDetector]) -> PhiDetector:
    return engines[request.param]

