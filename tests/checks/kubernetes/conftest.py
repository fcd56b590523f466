"""
Shared fixtures for Kubernetes check tests: the API stand-in serving the lab cluster's
fixtures, a kubeconfig for it, the inventory target and a check context.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hipaacheck.check import CheckContext, Policy
from hipaacheck.clients import Clients
from hipaacheck.config import KubernetesClusterConfig
from hipaacheck.lab.kubeapi import (
    FIXTURES,
    KubeApiStandIn,
    load_objects,
    load_pod_logs,
    write_kubeconfig,
)
from hipaacheck.model import Target, TargetKind

TOKEN = "check-test-token"


@pytest.fixture(scope="module")
def kube_standin() -> Iterator[KubeApiStandIn]:
    """The stand-in serving the lab fixtures; faults and the request log reset per test."""
    server = KubeApiStandIn(load_objects(FIXTURES), pod_logs=load_pod_logs(FIXTURES),
                            token=TOKEN, hang_seconds=5)
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _clean_standin(kube_standin: KubeApiStandIn) -> Iterator[None]:
    kube_standin.clear_faults()
    kube_standin.clear_requests()
    yield
    kube_standin.clear_faults()


@pytest.fixture
def kube_target(kube_standin: KubeApiStandIn, tmp_path: Path) -> Target:
    """The inventory target of the lab cluster, as the runner would build it."""
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube_standin.url, context="lab",
                                  token=TOKEN)
    cluster = KubernetesClusterConfig(name="lab", kubeconfig=kubeconfig, context="lab")
    return Target(TargetKind.KUBERNETES, "k8s:lab", "lab", cluster)


@pytest.fixture
def make_ctx() -> Callable[..., CheckContext]:
    """Build a fresh check context (own clients and memo) with a short timeout."""
    def make(timeout: float = 1.0, policy: Policy | None = None) -> CheckContext:
        return CheckContext(clients=Clients(timeout=timeout), policy=policy or Policy(),
                            logger=logging.getLogger("tests.checks.kubernetes"),
                            clock=lambda: datetime(2024, 7, 2, tzinfo=UTC),
                            timeout=timeout)
    return make
