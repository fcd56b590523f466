"""
The Kubernetes API stand-in, driven by the real `kubernetes` client over loopback HTTP.
"""

from __future__ import annotations

import json
import stat
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from hipaacheck.clients.kubernetes import read_only_api_client
from hipaacheck.config import KubernetesClusterConfig, parse_inventory
from hipaacheck.errors import LabError, ReadOnlyViolation
from hipaacheck.lab.kubeapi import (
    FIXTURES,
    KubeApiStandIn,
    load_objects,
    load_pod_logs,
    start_kubernetes_lab,
    write_kubeconfig,
)

TOKEN = "stand-in-test-token"
RECORDS_POD = "records-api-7c9d6b5f8-9wzmt"


@pytest.fixture(scope="module")
def standin() -> Iterator[KubeApiStandIn]:
    server = KubeApiStandIn(load_objects(FIXTURES), pod_logs=load_pod_logs(FIXTURES),
                            token=TOKEN, hang_seconds=5)
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_faults(standin: KubeApiStandIn) -> Iterator[None]:
    standin.clear_faults()
    standin.clear_requests()
    yield
    standin.clear_faults()


def _plain_client(url: str, token: str | None = TOKEN) -> k8s.ApiClient:
    """An ordinary, unguarded ApiClient: what a careless caller would use."""
    configuration = k8s.Configuration(host=url)
    if token:
        configuration.api_key = {"BearerToken": f"Bearer {token}"}
    configuration.retries = 0
    return k8s.ApiClient(configuration)


@pytest.fixture(scope="module")
def api(standin: KubeApiStandIn) -> Iterator[k8s.ApiClient]:
    with _plain_client(standin.url) as client:
        yield client


def _raw(url: str, token: str | None = TOKEN) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"}
                                     if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _status(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)  # type: ignore[no-any-return]


# --- lists and envelopes ----------------------------------------------------------------------

def test_list_envelope_is_a_proper_kubernetes_list(standin: KubeApiStandIn) -> None:
    code, body = _raw(standin.url + "/apis/storage.k8s.io/v1/storageclasses")

    assert code == 200
    assert body["kind"] == "StorageClassList"
    assert body["apiVersion"] == "storage.k8s.io/v1"
    assert body["metadata"]["resourceVersion"].isdigit()
    assert "continue" not in body["metadata"]
    assert [i["metadata"]["name"] for i in body["items"]] == [
        "ebs-csi-gp3", "efs-sc", "gp2", "gp3-encrypted"]
    # Like the real server, typed list items carry no apiVersion/kind of their own.
    assert "kind" not in body["items"][0]


def test_real_client_lists_typed_objects(api: k8s.ApiClient) -> None:
    classes = k8s.StorageV1Api(api).list_storage_class()

    by_name = {sc.metadata.name: sc for sc in classes.items}
    assert by_name["gp3-encrypted"].parameters["encrypted"] == "true"
    assert by_name["gp2"].provisioner == "kubernetes.io/aws-ebs"
    assert "encrypted" not in by_name["ebs-csi-gp3"].parameters


def test_lists_cluster_wide_and_per_namespace(api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(api)

    everywhere = core.list_pod_for_all_namespaces().items
    clinical = core.list_namespaced_pod("clinical").items
    nowhere = core.list_namespaced_pod("no-such-namespace").items

    assert len(everywhere) == 7
    assert {p.metadata.namespace for p in clinical} == {"clinical"}
    assert len(clinical) == 3
    assert nowhere == []


def test_serves_every_fixture_kind(api: k8s.ApiClient) -> None:
    core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
    net, rbac = k8s.NetworkingV1Api(api), k8s.RbacAuthorizationV1Api(api)

    assert [n.metadata.name for n in core.list_namespace().items] == [
        "audit", "clinical", "default", "kube-system"]
    assert len(core.list_persistent_volume().items) == 5
    assert len(core.list_persistent_volume_claim_for_all_namespaces().items) == 4
    assert len(core.list_secret_for_all_namespaces().items) == 5
    assert len(apps.list_deployment_for_all_namespaces().items) == 5
    assert len(apps.list_stateful_set_for_all_namespaces().items) == 1
    tls = {i.metadata.name: bool(i.spec.tls) for i in net.list_ingress_for_all_namespaces().items}
    assert tls == {"legacy-reports": False, "patient-portal": True}
    assert len(rbac.list_role_binding_for_all_namespaces().items) == 3
    lb = core.read_namespaced_service("records-api", "clinical")
    assert lb.spec.type == "LoadBalancer"


def test_custom_resources_are_served_with_kind(api: k8s.ApiClient) -> None:
    custom = k8s.CustomObjectsApi(api)

    listed = custom.list_namespaced_custom_object("cert-manager.io", "v1", "clinical",
                                                  "certificates")

    assert listed["kind"] == "CertificateList"
    assert {i["kind"] for i in listed["items"]} == {"Certificate"}
    assert len(listed["items"]) == 2


# --- paging -----------------------------------------------------------------------------------

def test_paging_with_limit_and_continue(api: k8s.ApiClient, standin: KubeApiStandIn) -> None:
    core = k8s.CoreV1Api(api)
    names: list[str] = []

    first = core.list_pod_for_all_namespaces(limit=3)
    assert first.metadata.remaining_item_count == 4
    page, token = first, first.metadata._continue
    names += [p.metadata.name for p in page.items]
    while token:
        page = core.list_pod_for_all_namespaces(limit=3, _continue=token)
        names += [p.metadata.name for p in page.items]
        token = page.metadata._continue

    assert len(names) == 7 == len(set(names))
    continued = [r for r in standin.requests if "continue" in r.query]
    assert len(continued) == 2 and all(r.query["limit"] == "3" for r in continued)


def test_continue_token_from_another_query_is_rejected(api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(api)
    token = core.list_pod_for_all_namespaces(limit=1).metadata._continue

    with pytest.raises(ApiException) as raised:
        core.list_persistent_volume(limit=1, _continue=token)

    assert raised.value.status == 400
    assert _status(raised.value)["reason"] == "BadRequest"


# --- selectors --------------------------------------------------------------------------------

@pytest.mark.parametrize(("selector", "expected"), [
    ("app.kubernetes.io/name=records-api", 2),
    ("app.kubernetes.io/name==records-api", 2),
    ("app.kubernetes.io/name!=records-api", 5),
    ("app.kubernetes.io/name in (records-api, audit-writer)", 3),
    ("app.kubernetes.io/name notin (records-api,audit-writer)", 4),
    ("pod-template-hash", 6),
    ("!pod-template-hash", 1),
    ("app.kubernetes.io/name=records-api,pod-template-hash=7c9d6b5f8", 2),
])
def test_label_selectors(api: k8s.ApiClient, selector: str, expected: int) -> None:
    pods = k8s.CoreV1Api(api).list_pod_for_all_namespaces(label_selector=selector).items

    assert len(pods) == expected


@pytest.mark.parametrize(("selector", "expected"), [
    ("metadata.name=records-db-0", {"records-db-0"}),
    ("metadata.namespace=audit", {"audit-writer-5f6d7c8b9-k4j2n"}),
    ("metadata.namespace==kube-system,metadata.name!=coredns-54d6f577c6-7lqzt",
     {"ebs-csi-controller-6c8f5d9b7-h2mnp"}),
    ("spec.nodeName=ip-10-0-2-57.ec2.internal",
     {RECORDS_POD, "audit-writer-5f6d7c8b9-k4j2n", "coredns-54d6f577c6-7lqzt"}),
])
def test_field_selectors(api: k8s.ApiClient, selector: str, expected: set[str]) -> None:
    pods = k8s.CoreV1Api(api).list_pod_for_all_namespaces(field_selector=selector).items

    assert {p.metadata.name for p in pods} == expected


def test_unsupported_selectors_are_bad_requests(api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(api)
    for kwargs in ({"field_selector": "spec.containers=x"}, {"label_selector": "a in b"}):
        with pytest.raises(ApiException) as raised:
            core.list_pod_for_all_namespaces(**kwargs)
        assert raised.value.status == 400


def test_selected_pages_carry_no_remaining_count(api: k8s.ApiClient) -> None:
    page = k8s.CoreV1Api(api).list_pod_for_all_namespaces(limit=1,
                                                          label_selector="pod-template-hash")

    assert page.metadata._continue
    assert page.metadata.remaining_item_count is None


# --- get, 404, 403, 500, hang -----------------------------------------------------------------

def test_get_by_name(api: k8s.ApiClient) -> None:
    sc = k8s.StorageV1Api(api).read_storage_class("gp3-encrypted")
    pod = k8s.CoreV1Api(api).read_namespaced_pod("records-db-0", "clinical")
    ns = k8s.CoreV1Api(api).read_namespace("audit")

    assert sc.metadata.uid and sc.metadata.resource_version
    assert pod.spec.containers[0].name == "postgres"
    assert ns.metadata.labels["data-classification"] == "audit"


def test_missing_object_is_a_not_found_status(api: k8s.ApiClient) -> None:
    with pytest.raises(ApiException) as raised:
        k8s.StorageV1Api(api).read_storage_class("io2-fast")

    body = _status(raised.value)
    assert raised.value.status == 404
    assert (body["kind"], body["status"], body["reason"], body["code"]) == (
        "Status", "Failure", "NotFound", 404)
    assert body["details"] == {"name": "io2-fast", "group": "storage.k8s.io",
                               "kind": "storageclasses"}


def test_absent_resource_type_is_not_found(api: k8s.ApiClient) -> None:
    with pytest.raises(ApiException) as raised:
        k8s.CustomObjectsApi(api).list_cluster_custom_object(
            "snapshot.storage.k8s.io", "v1", "volumesnapshotclasses")

    assert raised.value.status == 404
    assert _status(raised.value)["reason"] == "NotFound"


def test_forbid_answers_403_for_that_prefix_only(api: k8s.ApiClient,
                                                 standin: KubeApiStandIn) -> None:
    standin.forbid("/apis/storage.k8s.io/")

    with pytest.raises(ApiException) as raised:
        k8s.StorageV1Api(api).list_storage_class()
    pvs = k8s.CoreV1Api(api).list_persistent_volume().items

    body = _status(raised.value)
    assert raised.value.status == 403
    assert (body["reason"], body["code"]) == ("Forbidden", 403)
    assert 'cannot list resource "storageclasses" in API group "storage.k8s.io"' in body["message"]
    assert len(pvs) == 5


def test_fail_answers_the_given_code(api: k8s.ApiClient, standin: KubeApiStandIn) -> None:
    standin.fail("/api/v1/persistentvolumes")
    standin.fail("/api/v1/namespaces", 503)

    with pytest.raises(ApiException) as server_error:
        k8s.CoreV1Api(api).list_persistent_volume()
    with pytest.raises(ApiException) as unavailable:
        k8s.CoreV1Api(api).list_namespace()

    assert server_error.value.status == 500
    assert _status(server_error.value)["reason"] == "InternalError"
    assert unavailable.value.status == 503


def test_hang_holds_the_request_until_the_client_times_out(api: k8s.ApiClient,
                                                           standin: KubeApiStandIn) -> None:
    standin.hang("/apis/storage.k8s.io")
    started = time.monotonic()

    with pytest.raises(urllib3.exceptions.HTTPError):
        k8s.StorageV1Api(api).list_storage_class(_request_timeout=0.3)

    assert time.monotonic() - started < 4
    assert standin.requests[-1].status == 0


def test_longest_fault_prefix_wins(api: k8s.ApiClient, standin: KubeApiStandIn) -> None:
    standin.forbid("/api/v1/")
    standin.fail("/api/v1/nodes", 500)

    with pytest.raises(ApiException) as raised:
        k8s.CoreV1Api(api).list_node()

    assert raised.value.status == 500


# --- pod logs ---------------------------------------------------------------------------------

def test_pod_logs_by_container_and_previous(api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(api)

    current = core.read_namespaced_pod_log(RECORDS_POD, "clinical", container="records-api")
    previous = core.read_namespaced_pod_log(RECORDS_POD, "clinical", container="records-api",
                                            previous=True)
    single = core.read_namespaced_pod_log("records-db-0", "clinical")

    assert '"msg":"listening"' in current
    assert "password authentication failed" in previous and previous not in current
    assert "database system is ready" in single


def test_pod_logs_tail_lines_and_limit_bytes(api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(api)

    tail = core.read_namespaced_pod_log(RECORDS_POD, "clinical", container="records-api",
                                        previous=True, tail_lines=1)
    head = core.read_namespaced_pod_log(RECORDS_POD, "clinical", container="records-api",
                                        previous=True, limit_bytes=10)

    assert tail.count("\n") == 1 and '"msg":"exiting"' in tail
    assert len(head.encode()) == 10


def test_pod_log_errors(api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(api)
    cases = [
        ({"name": RECORDS_POD, "namespace": "clinical"}, 400),  # two containers, none named
        ({"name": RECORDS_POD, "namespace": "clinical", "container": "sidecar"}, 400),
        ({"name": "records-db-0", "namespace": "clinical", "previous": True}, 400),
        ({"name": "gone-pod", "namespace": "clinical"}, 404),
    ]
    for kwargs, code in cases:
        with pytest.raises(ApiException) as raised:
            core.read_namespaced_pod_log(**kwargs)
        assert raised.value.status == code, kwargs


# --- read-only, on both sides -----------------------------------------------------------------

def test_writes_are_refused_with_405_and_recorded(api: k8s.ApiClient,
                                                  standin: KubeApiStandIn) -> None:
    body = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="x"), data={"k": "v"})

    with pytest.raises(ApiException) as created:
        k8s.CoreV1Api(api).create_namespaced_config_map("clinical", body)
    with pytest.raises(ApiException) as deleted:
        k8s.StorageV1Api(api).delete_storage_class("gp2")

    assert created.value.status == deleted.value.status == 405
    assert _status(created.value)["reason"] == "MethodNotAllowed"
    assert [(r.method, r.path, r.status) for r in standin.requests] == [
        ("POST", "/api/v1/namespaces/clinical/configmaps", 405),
        ("DELETE", "/apis/storage.k8s.io/v1/storageclasses/gp2", 405)]
    assert k8s.StorageV1Api(api).read_storage_class("gp2").metadata.name == "gp2"


def test_read_only_client_refuses_before_sending(standin: KubeApiStandIn,
                                                 tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", standin.url, token=TOKEN)
    cluster = KubernetesClusterConfig(name="lab", kubeconfig=kubeconfig, context="lab")
    body = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="x"))

    with read_only_api_client(cluster, timeout=2) as guarded:
        with pytest.raises(ReadOnlyViolation):
            k8s.CoreV1Api(guarded).create_namespaced_config_map("clinical", body)
        with pytest.raises(ReadOnlyViolation):
            k8s.StorageV1Api(guarded).delete_storage_class("gp2")

    assert standin.requests == []


# --- authentication and discovery -------------------------------------------------------------

def test_wrong_or_missing_token_is_unauthorized(standin: KubeApiStandIn) -> None:
    for token in ("not-the-token", None):
        with _plain_client(standin.url, token) as client:
            with pytest.raises(ApiException) as raised:
                k8s.CoreV1Api(client).list_namespace()
            version = k8s.VersionApi(client).get_code()
        assert raised.value.status == 401
        assert _status(raised.value)["reason"] == "Unauthorized"
        assert version.git_version.startswith("v1.29")


def test_discovery_documents(api: k8s.ApiClient) -> None:
    groups = {g.name: g for g in k8s.ApisApi(api).get_api_versions().groups}
    storage = k8s.StorageV1Api(api).get_api_resources()
    core = k8s.CoreV1Api(api).get_api_resources()

    assert {"apps", "storage.k8s.io", "rbac.authorization.k8s.io", "cert-manager.io"} <= set(groups)
    assert groups["cert-manager.io"].preferred_version.group_version == "cert-manager.io/v1"
    classes = next(r for r in storage.resources if r.name == "storageclasses")
    assert (classes.kind, classes.namespaced) == ("StorageClass", False)
    assert {"get", "list"} <= set(classes.verbs)
    assert any(r.name == "pods/log" and r.verbs == ["get"] for r in core.resources)
    assert k8s.CoreApi(api).get_api_versions().versions == ["v1"]


def test_dynamic_client_discovers_and_lists(api: k8s.ApiClient) -> None:
    dynamic = DynamicClient(api)

    certificates = dynamic.resources.get(api_version="cert-manager.io/v1", kind="Certificate")
    listed = certificates.get(namespace="clinical")

    assert {i.metadata.name for i in listed.items} == {"records-api-tls", "records-db-tls"}


# --- lifecycle, fixtures and the lab entry point ----------------------------------------------

def test_stop_ends_kept_alive_connections() -> None:
    server = KubeApiStandIn(load_objects(FIXTURES))
    url = server.start()
    with _plain_client(url, None) as client:
        assert k8s.CoreV1Api(client).list_namespace().items
        server.stop()
        server.stop()
        with pytest.raises(urllib3.exceptions.HTTPError):
            k8s.CoreV1Api(client).list_namespace(_request_timeout=1)


def test_load_objects_flattens_lists_and_skips_lab_documents(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "one"}},
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "two"}}]},
        {"apiVersion": "lab.hipaacheck.dev/v1", "kind": "PodLogs",
         "metadata": {"namespace": "one", "name": "p"},
         "containers": [{"name": "c", "previous": True, "text": "line\n"}]},
        None]))

    assert [o["metadata"]["name"] for o in load_objects(tmp_path)] == ["one", "two"]
    assert load_pod_logs(tmp_path / "a.yaml") == {("one", "p", "c", True): "line\n"}


def test_load_objects_refuses_malformed_documents(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata: {}\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [unclosed\n")

    for path in (bad, broken):
        with pytest.raises(LabError):
            load_objects(path)


def test_start_kubernetes_lab(tmp_path: Path) -> None:
    part = start_kubernetes_lab(tmp_path / "lab")
    try:
        cluster_entry = part.inventory["kubernetes"]["clusters"][0]
        inventory = parse_inventory(yaml.safe_dump(part.inventory))
        cluster = inventory.kubernetes.clusters[0]
        kubeconfig = Path(cluster_entry["kubeconfig"])

        assert (cluster_entry["name"], cluster_entry["context"]) == ("lab", "lab")
        assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
        with read_only_api_client(cluster, timeout=2) as client:
            assert len(k8s.StorageV1Api(client).list_storage_class().items) == 4
        assert part.env == {}
    finally:
        part.stop()
        part.stop()


def test_the_lab_moves_velero_timestamps_to_today_and_nothing_else():
    from datetime import UTC, datetime, timedelta

    from hipaacheck.lab.kubeapi import FIXTURE_TIME, FIXTURES, load_objects, rebase_backups
    objects = load_objects(FIXTURES)
    now = FIXTURE_TIME + timedelta(days=500, hours=3)
    moved = rebase_backups(objects, now)
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in moved}
    before = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    schedule = ("Schedule", "clinical-daily")
    last = datetime.strptime(by_name[schedule]["status"]["lastBackup"],
                             "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    old = datetime.strptime(before[schedule]["status"]["lastBackup"],
                            "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert last - old == timedelta(days=500, hours=3)
    # Everything outside velero.io is left as the fixtures wrote it
    assert [o for o in moved if not o["apiVersion"].startswith("velero.io/")] == [
        o for o in objects if not o["apiVersion"].startswith("velero.io/")]
