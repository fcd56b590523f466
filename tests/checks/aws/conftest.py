"""
Shared fixtures for the AWS checks: one moto server per test process, and a fresh, empty
account inside it for every test, reached through fake credentials in the environment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from botocore.stub import Stubber

from hipaacheck.check import CheckContext, Policy
from hipaacheck.clients import Clients
from hipaacheck.config import AwsAccountConfig
from hipaacheck.lab.aws import (
    LAB_REGIONS,
    LabCredentials,
    create_isolated_account,
    start_moto_server,
)
from hipaacheck.model import Target, TargetKind


def hermetic_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep botocore away from the user's AWS files, profiles and the metadata service."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A moto server on 127.0.0.1 for this test process."""
    server, url = start_moto_server()
    yield url
    server.stop()


@pytest.fixture
def aws_creds(moto_url: str, monkeypatch: pytest.MonkeyPatch,
              tmp_path: Path) -> LabCredentials:
    """A fresh account, its fake credentials set in the environment for the default chain."""
    hermetic_aws_env(monkeypatch, tmp_path)
    creds = create_isolated_account(moto_url)
    for name, value in creds.env().items():
        monkeypatch.setenv(name, value)
    return creds


@pytest.fixture
def account(moto_url: str) -> AwsAccountConfig:
    """The inventory entry for the test account, in both lab regions."""
    return AwsAccountConfig(name="test", regions=list(LAB_REGIONS), endpoint_url=moto_url)


@pytest.fixture
def target(account: AwsAccountConfig) -> Target:
    """The AWS target the checks run against."""
    return Target(TargetKind.AWS, f"aws:{account.name}", account.name, account)


@pytest.fixture
def ctx() -> CheckContext:
    """A fresh scan context: its own clients and memo."""
    return CheckContext(clients=Clients(timeout=5), policy=Policy(),
                        logger=logging.getLogger("test.aws"),
                        clock=lambda: datetime.now(UTC), timeout=5)


DENIED_MESSAGE = "denied by the test"
"""The message stubbed errors carry; it must never reach a finding."""


@pytest.fixture
def stubbed(ctx: CheckContext, account: AwsAccountConfig
            ) -> Iterator[Callable[[str, str], Stubber]]:
    """
    A function that puts an active botocore Stubber on the scan's own client for
    (service, region); the test queues the error responses on it.

    Only for responses moto cannot produce (AccessDenied, throttling); every other client of
    the session still talks to moto. A stubbed client answers only what is queued on it.
    """
    stubbers: list[Stubber] = []

    def stub(service: str, region: str) -> Stubber:
        stubber = Stubber(ctx.clients.aws(account).client(service, region))
        stubber.activate()
        stubbers.append(stubber)
        return stubber

    yield stub
    for stubber in stubbers:
        stubber.deactivate()
