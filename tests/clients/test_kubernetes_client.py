"""
The read-only Kubernetes client, paging and error classification, against the local API stand-in.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from hipaacheck.clients import Clients
from hipaacheck.clients.kubernetes import (
    PagingLoop,
    ReadOnlyApiClient,
    classify_api_error,
    list_all,
    observe,
    read_only_api_client,
    refuse_unless_read,
)
from hipaacheck.config import KubernetesClusterConfig
from hipaacheck.errors import ProbeUnavailable, ReadOnlyViolation
from hipaacheck.lab.kubeapi import FIXTURES, KubeApiStandIn, load_objects, write_kubeconfig
from hipaacheck.model import Unknown, UnknownReason

TOKEN = "client-test-token"
NEEDS = "list storage.k8s.io/storageclasses"


@pytest.fixture(scope="module")
def standin() -> Iterator[KubeApiStandIn]:
    server = KubeApiStandIn(load_objects(FIXTURES), token=TOKEN, hang_seconds=5)
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _reset(standin: KubeApiStandIn) -> Iterator[None]:
    standin.clear_faults()
    standin.clear_requests()
    yield
    standin.clear_faults()


@pytest.fixture
def cluster(standin: KubeApiStandIn, tmp_path: Path) -> KubernetesClusterConfig:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", standin.url, context="lab",
                                  token=TOKEN)
    return KubernetesClusterConfig(name="lab", kubeconfig=kubeconfig, context="lab")


@pytest.fixture
def api(cluster: KubernetesClusterConfig) -> Iterator[ReadOnlyApiClient]:
    with read_only_api_client(cluster, timeout=0.5) as client:
        yield client


# --- loading ----------------------------------------------------------------------------------

def test_loads_the_named_context_without_touching_the_global_default(
        standin: KubeApiStandIn, tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", standin.url, context="lab",
                                  token=TOKEN)
    # A second, current context pointing nowhere: the client must use the one it is told to.
    data = yaml.safe_load(kubeconfig.read_text())
    data["clusters"].append({"name": "decoy", "cluster": {"server": "http://127.0.0.1:9"}})
    data["contexts"].append({"name": "decoy",
                             "context": {"cluster": "decoy", "user": "lab-reader"}})
    data["current-context"] = "decoy"
    kubeconfig.write_text(yaml.safe_dump(data))
    default_before = k8s.Configuration.get_default_copy().host
    cluster = KubernetesClusterConfig(name="lab", kubeconfig=kubeconfig, context="lab")

    with read_only_api_client(cluster, timeout=1) as client:
        assert isinstance(client, k8s.ApiClient)
        assert client.configuration.host == standin.url
        assert k8s.CoreV1Api(client).list_namespace().items

    assert k8s.Configuration.get_default_copy().host == default_before


def test_missing_kubeconfig_or_context_is_probe_unavailable(tmp_path: Path,
                                                            standin: KubeApiStandIn) -> None:
    real = write_kubeconfig(tmp_path / "real", standin.url, context="lab", token=TOKEN)
    for cluster in (
            KubernetesClusterConfig(name="a", kubeconfig=tmp_path / "absent", context="lab"),
            KubernetesClusterConfig(name="b", kubeconfig=real, context="no-such-context")):
        with pytest.raises(ProbeUnavailable) as raised:
            read_only_api_client(cluster, timeout=1)
        assert raised.value.unknown.reason == UnknownReason.UNREACHABLE
        assert raised.value.unknown.needs
        assert TOKEN not in raised.value.unknown.detail


def test_clients_factory_builds_and_caches_the_read_only_client(
        cluster: KubernetesClusterConfig) -> None:
    clients = Clients(timeout=1)

    first = clients.kubernetes(cluster)

    assert isinstance(first, ReadOnlyApiClient)
    assert clients.kubernetes(cluster) is first
    assert first.default_timeout == 1


# --- read-only enforcement --------------------------------------------------------------------

def test_every_write_is_refused_before_it_is_sent(api: ReadOnlyApiClient,
                                                  standin: KubeApiStandIn) -> None:
    core, storage = k8s.CoreV1Api(api), k8s.StorageV1Api(api)
    meta = k8s.V1ObjectMeta(name="x")
    writes = [
        lambda: core.create_namespaced_config_map("clinical", k8s.V1ConfigMap(metadata=meta)),
        lambda: core.replace_namespace("audit", k8s.V1Namespace(metadata=meta)),
        lambda: core.patch_namespaced_secret("records-db-credentials", "clinical", {"data": {}}),
        lambda: core.delete_namespaced_pod("records-db-0", "clinical"),
        lambda: storage.delete_collection_storage_class(),
    ]

    for write in writes:
        with pytest.raises(ReadOnlyViolation):
            write()

    assert standin.requests == []


def test_exec_is_refused_even_as_a_get(api: ReadOnlyApiClient, standin: KubeApiStandIn) -> None:
    core = k8s.CoreV1Api(api)

    with pytest.raises(ReadOnlyViolation):
        core.connect_get_namespaced_pod_exec("records-db-0", "clinical", command=["id"])
    with pytest.raises(ReadOnlyViolation):
        stream(core.connect_get_namespaced_pod_exec, "records-db-0", "clinical",
               command=["id"], stderr=True, stdout=True)

    assert standin.requests == []


def test_the_guard_cannot_be_swapped_out(api: ReadOnlyApiClient) -> None:
    for name in ("call_api", "rest_client"):
        with pytest.raises(ReadOnlyViolation):
            setattr(api, name, None)


@pytest.mark.parametrize(("method", "url"), [
    ("POST", "http://h/api/v1/namespaces/a/pods"),
    ("delete", "http://h/api/v1/namespaces/a/pods/b"),
    ("HEAD", "http://h/api/v1/pods"),
    ("GET", "http://h/api/v1/namespaces/a/pods/b/attach?stdin=true"),
    ("GET", "http://h/api/v1/namespaces/a/services/b/proxy"),
])
def test_refuse_unless_read(method: str, url: str) -> None:
    with pytest.raises(ReadOnlyViolation) as raised:
        refuse_unless_read(method, url)

    assert "?" not in str(raised.value)


def test_reads_pass_the_guard() -> None:
    refuse_unless_read("GET", "http://h/api/v1/namespaces/a/pods/b/log?container=c")
    refuse_unless_read("get", "http://h/apis/storage.k8s.io/v1/storageclasses")


# --- timeouts ---------------------------------------------------------------------------------

def test_default_timeout_applies_once_without_retries(api: ReadOnlyApiClient,
                                                      standin: KubeApiStandIn) -> None:
    standin.hang("/apis/storage.k8s.io")
    started = time.monotonic()

    with pytest.raises(urllib3.exceptions.HTTPError) as raised:
        k8s.StorageV1Api(api).list_storage_class()

    # One attempt: a read that timed out is not retried.
    assert time.monotonic() - started >= 0.45
    assert len(standin.requests) == 1
    assert classify_api_error(raised.value, NEEDS).reason == UnknownReason.TIMEOUT


def test_explicit_request_timeout_wins(cluster: KubernetesClusterConfig,
                                      standin: KubeApiStandIn) -> None:
    standin.hang("/api/v1/nodes")
    started = time.monotonic()

    with read_only_api_client(cluster, timeout=30) as patient, \
            pytest.raises(urllib3.exceptions.HTTPError):
        k8s.CoreV1Api(patient).list_node(_request_timeout=0.2)

    assert time.monotonic() - started < 5


# --- paging -----------------------------------------------------------------------------------

def test_list_all_follows_continue_tokens(api: ReadOnlyApiClient,
                                          standin: KubeApiStandIn) -> None:
    pods = list_all(k8s.CoreV1Api(api).list_pod_for_all_namespaces, timeout=1, page_size=2)

    assert len(pods) == 7 == len({p.metadata.uid for p in pods})
    assert [r.query["limit"] for r in standin.requests] == ["2"] * 4
    assert ["continue" in r.query for r in standin.requests] == [False, True, True, True]


def test_list_all_passes_arguments_and_reads_custom_objects(api: ReadOnlyApiClient) -> None:
    clinical = list_all(k8s.CoreV1Api(api).list_namespaced_pod, timeout=1, page_size=1,
                        namespace="clinical", label_selector="app.kubernetes.io/name=records-api")
    certificates = list_all(k8s.CustomObjectsApi(api).list_namespaced_custom_object, timeout=1,
                            page_size=1, group="cert-manager.io", version="v1",
                            namespace="clinical", plural="certificates")

    assert len(clinical) == 2
    assert [c["metadata"]["name"] for c in certificates] == ["records-api-tls", "records-db-tls"]


def test_list_all_stops_when_a_token_repeats() -> None:
    # A server that never finishes paging: the same continue token on every page.
    def endless(**kwargs: Any) -> dict[str, Any]:
        return {"items": [{"n": 1}], "metadata": {"continue": "again"}}

    with pytest.raises(PagingLoop):
        list_all(endless, timeout=1)
    assert classify_api_error(PagingLoop("x"), NEEDS).reason == UnknownReason.UNPARSEABLE


# --- classification against real failures ----------------------------------------------------

def _failure(call: Any) -> BaseException:
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the test inspects whatever the client raised
        return exc
    raise AssertionError("the call did not fail")


def test_forbidden_names_the_permission_and_never_the_body(api: ReadOnlyApiClient,
                                                           standin: KubeApiStandIn) -> None:
    standin.forbid("/apis/storage.k8s.io/")

    unknown = classify_api_error(_failure(k8s.StorageV1Api(api).list_storage_class), NEEDS)

    assert unknown.reason == UnknownReason.ACCESS_DENIED
    assert unknown.needs == NEEDS
    assert "forbidden: User" not in unknown.detail and "403" in unknown.detail


def test_unauthorized_not_found_and_server_errors(standin: KubeApiStandIn, tmp_path: Path,
                                                  api: ReadOnlyApiClient) -> None:
    wrong = write_kubeconfig(tmp_path / "wrong", standin.url, context="lab", token="wrong")
    with read_only_api_client(KubernetesClusterConfig(name="w", kubeconfig=wrong, context="lab"),
                              timeout=1) as unauthenticated:
        denied = classify_api_error(_failure(k8s.CoreV1Api(unauthenticated).list_namespace),
                                    "list namespaces")
    custom = k8s.CustomObjectsApi(api)
    absent = classify_api_error(_failure(lambda: custom.list_cluster_custom_object(
        "snapshot.storage.k8s.io", "v1", "volumesnapshotclasses")), "list snapshots")
    standin.fail("/api/v1/persistentvolumes", 502)
    failed = classify_api_error(_failure(k8s.CoreV1Api(api).list_persistent_volume),
                                "list persistentvolumes")

    assert (denied.reason, denied.needs) == (UnknownReason.ACCESS_DENIED,
                                             "valid cluster credentials allowed to list namespaces")
    assert absent.reason == UnknownReason.NOT_SUPPORTED
    assert failed.reason == UnknownReason.UNREACHABLE and "502" in failed.detail


def test_connection_refused_is_unreachable(tmp_path: Path) -> None:
    server = KubeApiStandIn([])
    url = server.start()
    server.stop()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url, context="lab")
    cluster = KubernetesClusterConfig(name="gone", kubeconfig=kubeconfig, context="lab")

    with read_only_api_client(cluster, timeout=1) as client:
        fact = observe(lambda: list_all(k8s.CoreV1Api(client).list_namespace, timeout=1),
                       needs="list namespaces")

    assert isinstance(fact, Unknown)
    assert fact.reason == UnknownReason.UNREACHABLE


@pytest.mark.parametrize(("status", "reason"), [
    (401, UnknownReason.ACCESS_DENIED), (403, UnknownReason.ACCESS_DENIED),
    (404, UnknownReason.NOT_SUPPORTED), (429, UnknownReason.THROTTLED),
    (500, UnknownReason.UNREACHABLE), (503, UnknownReason.UNREACHABLE),
    (0, UnknownReason.UNREACHABLE), (400, UnknownReason.UNPARSEABLE),
])
def test_status_codes_map_to_reasons(status: int, reason: UnknownReason) -> None:
    exc = ApiException(status=status, reason="x")
    exc.body = '{"message": "secret-looking body"}'

    unknown = classify_api_error(exc, NEEDS)

    assert unknown.reason == reason
    assert "secret-looking" not in unknown.detail


def test_observe_returns_values_and_lets_bugs_through(api: ReadOnlyApiClient) -> None:
    value = observe(lambda: list_all(k8s.CoreV1Api(api).list_namespace, timeout=1),
                    needs="list namespaces")

    assert isinstance(value, list) and len(value) == 4
    with pytest.raises(ReadOnlyViolation):
        observe(lambda: k8s.CoreV1Api(api).delete_namespace("audit"), needs="delete")
