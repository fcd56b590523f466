"""
kubernetes.storageclass.encryption: evaluate with hand-built observations, collect against the
API stand-in serving the lab cluster plus StorageClasses and volumes of other provisioners.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.kubernetes.encryption import (
    ClassEncryptionObservation,
    ClassFacts,
    ClassVolumes,
    StorageClassEncryption,
)
from hipaacheck.checks.kubernetes.storage import (
    NEEDS_PERSISTENTVOLUMES,
    NEEDS_STORAGECLASSES,
    EbsStorageClassEncrypted,
)
from hipaacheck.config import KubernetesClusterConfig
from hipaacheck.lab.kubeapi import FIXTURES, KubeApiStandIn, load_objects, write_kubeconfig
from hipaacheck.model import Status, System, Target, TargetKind, Unknown, UnknownReason

TARGET = Target(TargetKind.KUBERNETES, "k8s:lab", "lab")
CHECK = StorageClassEncryption()
SC_PATH = "/apis/storage.k8s.io/v1/storageclasses"
PV_PATH = "/api/v1/persistentvolumes"
TOKEN = "encryption-test-token"


def _sc(name: str, provisioner: str, parameter: str | None = None, *, key: bool = False,
        fs: str | None = None) -> ClassFacts:
    return ClassFacts(name=name, provisioner=provisioner, default_class=False,
                      encryption_parameter=parameter, key_set=key, file_system_id=fs)


def _evaluate(*classes: ClassFacts, volumes: Any = None, policy: Policy | None = None,
              phi: tuple[str, ...] = ()) -> dict[str, Any]:
    obs = ClassEncryptionObservation(classes=classes, volumes={} if volumes is None else volumes,
                                     phi_namespaces=phi)
    return {f.resource: f for f in CHECK.evaluate(obs, TARGET, policy or Policy())}


# --- metadata ---------------------------------------------------------------------------------

def test_metadata_is_complete() -> None:
    meta = StorageClassEncryption.meta

    assert meta.problems() == []
    assert meta.citations == ("164.312(a)(2)(iv)", "164.312(e)(2)(ii)")
    assert {(o.system, o.action) for o in meta.operations} == {
        (System.KUBERNETES, "list storage.k8s.io/storageclasses"),
        (System.KUBERNETES, "list persistentvolumes")}


# --- evaluate ---------------------------------------------------------------------------------

@pytest.mark.parametrize("provisioner", ["pd.csi.storage.gke.io", "kubernetes.io/gce-pd",
                                         "disk.csi.azure.com", "file.csi.azure.com"])
def test_platform_encrypted_provisioners_pass(provisioner: str) -> None:
    results = _evaluate(_sc("standard", provisioner))

    assert results["storageclass/standard"].status == Status.PASS
    assert results["storageclass/standard"].evidence["encryption_basis"] == "platform"


def test_customer_key_policy_warns_or_cannot_tell() -> None:
    strict = Policy(require_customer_managed_keys=True)

    results = _evaluate(_sc("pd-cmek", "pd.csi.storage.gke.io", key=True),
                        _sc("pd-google", "pd.csi.storage.gke.io"),
                        _sc("azure-des", "disk.csi.azure.com", key=True),
                        _sc("azurefile", "file.csi.azure.com"),
                        _sc("rbd-nokms", "rbd.csi.ceph.com", "true"), policy=strict)

    assert {r: f.status for r, f in results.items()} == {
        "storageclass/pd-cmek": Status.PASS, "storageclass/pd-google": Status.WARN,
        "storageclass/azure-des": Status.PASS, "storageclass/azurefile": Status.UNVERIFIED,
        "storageclass/rbd-nokms": Status.WARN}
    assert results["storageclass/azurefile"].unknown_reason == UnknownReason.NOT_VISIBLE


@pytest.mark.parametrize(("provisioner", "key"), [
    ("rbd.csi.ceph.com", "encrypted_parameter"), ("cephfs.csi.ceph.com", "encrypted_parameter"),
    ("driver.longhorn.io", "encrypted_parameter"), ("pxd.portworx.com", "secure_parameter")])
@pytest.mark.parametrize("value", [None, "false", "", "yes"])
def test_parameter_provisioners_fail_unless_true(provisioner: str, key: str,
                                                 value: str | None) -> None:
    results = _evaluate(_sc("open", provisioner, value), _sc("sealed", provisioner, " TRUE "))

    assert results["storageclass/open"].status == Status.FAIL
    assert results["storageclass/open"].evidence[key] == ("absent" if value is None else value)
    assert results["storageclass/sealed"].status == Status.PASS


def test_fail_lists_the_bound_claims_of_phi_namespaces_only() -> None:
    volumes = {"rbd": ClassVolumes(4, (("billing", "ledger"), ("clinical", "records-0"),
                                       ("clinical", "records-1")))}

    everywhere = _evaluate(_sc("rbd", "rbd.csi.ceph.com"), volumes=volumes)
    phi_only = _evaluate(_sc("rbd", "rbd.csi.ceph.com"), volumes=volumes, phi=("clinical",))

    assert everywhere["storageclass/rbd"].evidence["claims"] == (
        "billing/ledger", "clinical/records-0", "clinical/records-1")
    assert "phi_namespace_claims" not in everywhere["storageclass/rbd"].evidence
    evidence = phi_only["storageclass/rbd"].evidence
    assert evidence["claims"] == ("clinical/records-0", "clinical/records-1")
    assert (evidence["persistent_volumes"], evidence["bound_claims"],
            evidence["phi_namespace_claims"]) == (4, 3, 2)


def test_efs_fails_when_a_volume_turns_tls_off_and_is_otherwise_unverified() -> None:
    volumes = {"efs-plain": ClassVolumes(2, (("clinical", "uploads"),), ("pv-plain",)),
               "efs-tls": ClassVolumes(1, (("clinical", "scans"),))}

    results = _evaluate(_sc("efs-plain", "efs.csi.aws.com", fs="fs-1"),
                        _sc("efs-tls", "efs.csi.aws.com", fs="fs-2"), volumes=volumes)

    plain, tls = results["storageclass/efs-plain"], results["storageclass/efs-tls"]
    assert plain.status == Status.FAIL
    assert plain.evidence["volumes_without_tls_names"] == ("pv-plain",)
    assert (tls.status, tls.unknown_reason) == (Status.UNVERIFIED, UnknownReason.NOT_VISIBLE)
    assert tls.needs is not None and "elasticfilesystem:DescribeFileSystems" in tls.needs
    assert tls.evidence["file_system_id"] == "fs-2"


@pytest.mark.parametrize("provisioner", ["rancher.io/local-path", "kubernetes.io/no-provisioner",
                                         "csi.vsphere.vmware.com", "example.com/unknown"])
def test_encryption_decided_elsewhere_or_unknown_is_unverified(provisioner: str) -> None:
    finding = _evaluate(_sc("x", provisioner))["storageclass/x"]

    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.NOT_VISIBLE)
    assert finding.needs


def test_ebs_classes_are_left_to_the_ebs_check() -> None:
    results = _evaluate(_sc("gp2", "kubernetes.io/aws-ebs"), _sc("gp3", "ebs.csi.aws.com"),
                        _sc("pd", "pd.csi.storage.gke.io"))
    only_ebs = _evaluate(_sc("gp2", "kubernetes.io/aws-ebs"))

    assert list(results) == ["storageclass/pd"]
    assert only_ebs["storageclasses"].status == Status.PASS
    assert only_ebs["storageclasses"].evidence == {"storage_classes": 1}


@pytest.mark.parametrize("reason", [UnknownReason.ACCESS_DENIED, UnknownReason.TIMEOUT,
                                    UnknownReason.UNREACHABLE])
def test_unlisted_classes_are_unverified(reason: UnknownReason) -> None:
    unknown = Unknown(reason, "could not list", needs=NEEDS_STORAGECLASSES)
    obs = ClassEncryptionObservation(classes=unknown, volumes={})

    findings = CHECK.evaluate(obs, TARGET, Policy())

    assert [(f.resource, f.status, f.unknown_reason, f.needs) for f in findings] == [
        ("storageclasses", Status.UNVERIFIED, reason, NEEDS_STORAGECLASSES)]


def test_unlisted_volumes_keep_the_verdicts() -> None:
    denied = Unknown(UnknownReason.ACCESS_DENIED, "denied", needs=NEEDS_PERSISTENTVOLUMES)

    results = _evaluate(_sc("rbd", "rbd.csi.ceph.com"), _sc("efs", "efs.csi.aws.com"),
                        volumes=denied)

    assert results["storageclass/rbd"].status == Status.FAIL
    assert results["storageclass/rbd"].evidence["volume_listing"] == "access_denied"
    assert results["storageclass/efs"].status == Status.UNVERIFIED
    assert results["storageclass/efs"].evidence["volumes_without_tls"] is None


# --- collect against the stand-in -------------------------------------------------------------

def _storage_class(name: str, provisioner: str, **parameters: str) -> dict[str, Any]:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name, "resourceVersion": "430001"},
            "provisioner": provisioner, "parameters": parameters,
            "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"}


def _volume(name: str, storage_class: str, driver: str, claim: tuple[str, str] | None,
            phase: str = "Bound", **attributes: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"},
        "csi": {"driver": driver, "volumeHandle": f"handle-{name}",
                "volumeAttributes": attributes},
        "persistentVolumeReclaimPolicy": "Delete", "storageClassName": storage_class}
    if claim:
        spec["claimRef"] = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                            "namespace": claim[0], "name": claim[1]}
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "resourceVersion": "430100"}, "spec": spec,
            "status": {"phase": phase}}


EXTRA_OBJECTS = [
    _storage_class("ceph-rbd", "rbd.csi.ceph.com", clusterID="c1", pool="kube",
                   imageFeatures="layering"),
    _storage_class("ceph-rbd-encrypted", "rbd.csi.ceph.com", clusterID="c1", pool="kube",
                   encrypted="true", encryptionKMSID="vault-kms"),
    _storage_class("gke-pd", "pd.csi.storage.gke.io", type="pd-balanced"),
    _storage_class("longhorn", "driver.longhorn.io", numberOfReplicas="3"),
    _storage_class("local-path", "rancher.io/local-path"),
    _volume("pv-rbd-1", "ceph-rbd", "rbd.csi.ceph.com", ("clinical", "records-replica")),
    _volume("pv-rbd-2", "ceph-rbd", "rbd.csi.ceph.com", ("default", "scratch")),
    _volume("pv-rbd-3", "ceph-rbd", "rbd.csi.ceph.com", ("clinical", "old-export"),
            phase="Released"),
    _volume("pv-efs-plain", "efs-sc", "efs.csi.aws.com", ("clinical", "legacy-share"),
            encryptInTransit="false"),
]


@pytest.fixture(scope="module")
def standin() -> Iterator[KubeApiStandIn]:
    """The lab cluster plus classes and volumes of other provisioners."""
    server = KubeApiStandIn(load_objects(FIXTURES) + EXTRA_OBJECTS, token=TOKEN, hang_seconds=5)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def target(standin: KubeApiStandIn, tmp_path: Path) -> Iterator[Target]:
    """The target of that cluster, with `clinical` as its PHI namespace."""
    standin.clear_faults()
    standin.clear_requests()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", standin.url, context="lab",
                                  token=TOKEN)
    cluster = KubernetesClusterConfig(name="lab", kubeconfig=kubeconfig, context="lab",
                                      namespaces=["clinical"])
    yield Target(TargetKind.KUBERNETES, "k8s:lab", "lab", cluster)
    standin.clear_faults()


def _run(ctx: CheckContext, target: Target) -> dict[str, Any]:
    return {f.resource: f for f in CHECK.evaluate(CHECK.collect(ctx, target), target,
                                                   ctx.policy)}


def test_collect_judges_every_non_ebs_class(target: Target, standin: KubeApiStandIn,
                                            make_ctx: Callable[..., CheckContext]) -> None:
    results = _run(make_ctx(), target)

    assert {r: f.status for r, f in results.items()} == {
        "storageclass/ceph-rbd": Status.FAIL, "storageclass/ceph-rbd-encrypted": Status.PASS,
        "storageclass/gke-pd": Status.PASS, "storageclass/longhorn": Status.FAIL,
        "storageclass/local-path": Status.UNVERIFIED, "storageclass/efs-sc": Status.FAIL}
    rbd = results["storageclass/ceph-rbd"].evidence
    # The Released volume holds data but no claim; only the PHI namespace's claim is named.
    assert (rbd["persistent_volumes"], rbd["bound_claims"], rbd["claims"]) == (
        3, 2, ("clinical/records-replica",))
    assert results["storageclass/efs-sc"].evidence["volumes_without_tls_names"] == (
        "pv-efs-plain",)
    assert results["storageclass/ceph-rbd-encrypted"].evidence["customer_managed_key_set"]
    # Only the reads it declares: list storage.k8s.io/storageclasses and list persistentvolumes.
    assert {(r.method, r.path) for r in standin.requests} == {("GET", SC_PATH), ("GET", PV_PATH)}


def test_collect_shares_listings_with_the_ebs_check(target: Target, standin: KubeApiStandIn,
                                                    make_ctx: Callable[..., CheckContext]
                                                    ) -> None:
    ctx = make_ctx()
    ebs = EbsStorageClassEncrypted()

    ebs_findings = ebs.evaluate(ebs.collect(ctx, target), target, ctx.policy)
    results = _run(ctx, target)

    assert [r.path for r in standin.requests] == [SC_PATH, PV_PATH]
    assert {f.resource for f in ebs_findings}.isdisjoint(results)


def test_collect_forbidden_classes_is_unverified(target: Target, standin: KubeApiStandIn,
                                                 make_ctx: Callable[..., CheckContext]) -> None:
    standin.forbid(SC_PATH)

    findings = list(_run(make_ctx(), target).values())

    assert [(f.status, f.unknown_reason, f.needs) for f in findings] == [
        (Status.UNVERIFIED, UnknownReason.ACCESS_DENIED, NEEDS_STORAGECLASSES)]


def test_collect_forbidden_volumes_keeps_verdicts(target: Target, standin: KubeApiStandIn,
                                                  make_ctx: Callable[..., CheckContext]) -> None:
    standin.forbid(PV_PATH)

    results = _run(make_ctx(), target)

    assert results["storageclass/ceph-rbd"].status == Status.FAIL
    assert results["storageclass/ceph-rbd"].evidence["volume_listing"] == "access_denied"
    # Without the volumes, EFS's TLS setting is unknown: never PASS.
    assert results["storageclass/efs-sc"].status == Status.UNVERIFIED


@pytest.mark.parametrize(("fault", "reason"), [
    ("hang", UnknownReason.TIMEOUT), ("fail", UnknownReason.UNREACHABLE)])
def test_collect_hang_and_server_error_are_unverified(
        fault: str, reason: UnknownReason, target: Target, standin: KubeApiStandIn,
        make_ctx: Callable[..., CheckContext]) -> None:
    getattr(standin, fault)(SC_PATH)

    findings = list(_run(make_ctx(timeout=0.3), target).values())

    assert [(f.status, f.unknown_reason) for f in findings] == [(Status.UNVERIFIED, reason)]


def test_collect_lab_cluster_efs_class_is_unverified(kube_target: Target,
                                                     make_ctx: Callable[..., CheckContext]
                                                     ) -> None:
    results = _run(make_ctx(), kube_target)

    assert {r: f.status for r, f in results.items()} == {
        "storageclass/efs-sc": Status.UNVERIFIED}
    assert results["storageclass/efs-sc"].evidence["claims"] == ("clinical/shared-uploads",)
