"""
Shared fixtures for the log-sink checks: targets built from real sink configurations, a moto
server (with the CloudWatch Logs data protection operations moto lacks), a real PostgreSQL
server, and the Kubernetes API stand-in serving pod logs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from moto.logs.responses import LogsResponse

from hipaacheck.check import CheckContext, Policy
from hipaacheck.clients import Clients
from hipaacheck.config import LogSinkConfig
from hipaacheck.lab.aws import LabCredentials, create_isolated_account, start_moto_server
from hipaacheck.lab.kubeapi import (
    FIXTURES,
    KubeApiStandIn,
    load_objects,
    load_pod_logs,
    write_kubeconfig,
)
from hipaacheck.lab.postgres import SeededLab, seeded_server
from hipaacheck.model import Target, TargetKind

REGION = "us-east-1"
KUBE_TOKEN = "logs-test-token"


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


@pytest.fixture
def live_ctx() -> CheckContext:
    """A context on the real clock, for counterparts that stamp what they store with it."""
    return CheckContext(clients=Clients(timeout=5.0), policy=Policy(),
                        logger=logging.getLogger("test.logs"),
                        clock=lambda: dt.datetime.now(dt.UTC), timeout=5.0)


# --------------------------------------------------------------------------------------------
# AWS: one moto server per test process, a fresh account per test.

class DataProtectionStore:
    """
    CloudWatch Logs data protection policies for moto, which does not implement them: the
    Put, Get and DescribeAccountPolicies operations answer over moto's own HTTP server.

    `backdate` moves a policy's lastUpdatedTime, which a real account cannot choose.
    """

    def __init__(self) -> None:
        self.groups: dict[tuple[str, str, str], tuple[str, int]] = {}
        self.accounts: dict[tuple[str, str], tuple[str, int]] = {}

    def backdate(self, account: str, group: str, updated_ms: int) -> None:
        key = (account, REGION, group)
        self.groups[key] = (self.groups[key][0], updated_ms)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        store = self

        def put_data_protection_policy(self: LogsResponse) -> str:
            group, doc = self._get_param("logGroupIdentifier"), self._get_param("policyDocument")
            store.groups[(self.current_account, self.region, group)] = (doc, _now_ms())
            return json.dumps({"logGroupIdentifier": group, "policyDocument": doc,
                               "lastUpdatedTime": _now_ms()})

        def get_data_protection_policy(self: LogsResponse) -> str:
            group = self._get_param("logGroupIdentifier")
            found = store.groups.get((self.current_account, self.region, group))
            body: dict[str, Any] = {"logGroupIdentifier": group}
            if found:
                body.update(policyDocument=found[0], lastUpdatedTime=found[1])
            return json.dumps(body)

        def put_account_policy(self: LogsResponse) -> str:
            doc = self._get_param("policyDocument")
            store.accounts[(self.current_account, self.region)] = (doc, _now_ms())
            return json.dumps({"accountPolicy": {"policyName": self._get_param("policyName"),
                                                 "policyDocument": doc}})

        def describe_account_policies(self: LogsResponse) -> str:
            found = store.accounts.get((self.current_account, self.region))
            policies = [] if not found else [{
                "policyName": "account", "policyDocument": found[0],
                "lastUpdatedTime": found[1], "policyType": "DATA_PROTECTION_POLICY",
                "scope": "ALL", "accountId": self.current_account}]
            return json.dumps({"accountPolicies": policies})

        for fn in (put_data_protection_policy, get_data_protection_policy, put_account_policy,
                   describe_account_policies):
            monkeypatch.setattr(LogsResponse, fn.__name__, fn, raising=False)


def _now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A moto server on 127.0.0.1 for this test process."""
    server, url = start_moto_server()
    yield url
    server.stop()


@pytest.fixture
def data_protection(monkeypatch: pytest.MonkeyPatch) -> DataProtectionStore:
    store = DataProtectionStore()
    store.install(monkeypatch)
    return store


@pytest.fixture
def aws_creds(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
              data_protection: DataProtectionStore) -> LabCredentials:
    """A fresh account, its fake credentials in the environment for the default chain."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    creds = create_isolated_account(moto_url)
    for name, value in creds.env().items():
        monkeypatch.setenv(name, value)
    return creds


class Fault:
    """
    Answers chosen calls of a botocore client with an AWS error before they are sent, for the
    errors moto cannot produce (throttling, a denial of one operation).
    """

    def __init__(self, client: Any, operation: str, code: str, times: int = 1,
                 status: int = 400) -> None:
        self.left, self.code, self.status, self.seen = times, code, status, 0
        self.xml = client.meta.service_model.protocol in ("rest-xml", "query")
        client.meta.events.register(f"before-send.{client.meta.service_model.endpoint_prefix}"
                                    f".{operation}", self._answer)

    def _answer(self, request: Any, **_: Any) -> AWSResponse | None:
        self.seen += 1
        if self.left <= 0:
            return None
        self.left -= 1
        if self.xml:
            body = (f"<Error><Code>{self.code}</Code><Message>injected by the test</Message>"
                    "</Error>").encode()
            kind = "application/xml"
        else:
            body = json.dumps({"__type": self.code, "message": "injected by the test"}).encode()
            kind = "application/x-amz-json-1.1"
        return AWSResponse(request.url, self.status, {"Content-Type": kind}, _Raw(body))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


# --------------------------------------------------------------------------------------------
# PostgreSQL and Kubernetes.

@pytest.fixture(scope="module")
def pg_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededLab]:
    """A started, seeded PostgreSQL server for the module's tests."""
    with seeded_server(tmp_path_factory.mktemp("pg")) as lab:
        yield lab


@pytest.fixture(scope="module")
def kube_standin() -> Iterator[KubeApiStandIn]:
    """The stand-in serving the lab cluster's objects and pod logs."""
    server = KubeApiStandIn(load_objects(FIXTURES), pod_logs=load_pod_logs(FIXTURES),
                            token=KUBE_TOKEN, hang_seconds=5)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def kubeconfig(kube_standin: KubeApiStandIn, tmp_path: Path) -> Iterator[Path]:
    kube_standin.clear_faults()
    kube_standin.clear_requests()
    yield write_kubeconfig(tmp_path / "kubeconfig", kube_standin.url, context="lab",
                           token=KUBE_TOKEN)
    kube_standin.clear_faults()
