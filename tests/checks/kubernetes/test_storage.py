"""
kubernetes.storageclass.ebs_encrypted: evaluate with hand-built observations, collect against
the API stand-in serving the lab cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.kubernetes.storage import (
    NEEDS_PERSISTENTVOLUMES,
    NEEDS_STORAGECLASSES,
    EbsStorageClassEncrypted,
    StorageClassFacts,
    StorageObservation,
    VolumeUse,
)
from hipaacheck.config import KubernetesClusterConfig
from hipaacheck.errors import ProbeUnavailable
from hipaacheck.lab.kubeapi import KubeApiStandIn, write_kubeconfig
from hipaacheck.model import Status, System, Target, TargetKind, Unknown, UnknownReason

TARGET = Target(TargetKind.KUBERNETES, "k8s:lab", "lab")
CHECK = EbsStorageClassEncrypted()
SC_PATH = "/apis/storage.k8s.io/v1/storageclasses"
PV_PATH = "/api/v1/persistentvolumes"


def _sc(name: str, encrypted: str | None, *, provisioner: str = "ebs.csi.aws.com",
        kms: bool = False, customer: bool | None = None) -> StorageClassFacts:
    return StorageClassFacts(name=name, provisioner=provisioner, encrypted=encrypted,
                             kms_key_set=kms, customer_managed_key=kms if customer is None
                             else customer, default_class=False)


def _evaluate(*classes: StorageClassFacts, volumes: object = None,
              policy: Policy | None = None) -> dict[str, tuple[Status, dict[str, object]]]:
    obs = StorageObservation(classes=classes,
                             volumes={} if volumes is None else volumes)  # type: ignore[arg-type]
    return {f.resource: (f.status, dict(f.evidence))
            for f in CHECK.evaluate(obs, TARGET, policy or Policy())}


# --- metadata ---------------------------------------------------------------------------------

def test_metadata_is_complete_and_registered() -> None:
    meta = EbsStorageClassEncrypted.meta

    assert meta.problems() == []
    assert meta.citations == ("164.312(a)(2)(iv)",)
    assert {(o.system, o.action) for o in meta.operations} == {
        (System.KUBERNETES, NEEDS_STORAGECLASSES), (System.KUBERNETES, NEEDS_PERSISTENTVOLUMES)}
    registered = entry_points(group="hipaacheck.checks")[meta.id]
    assert registered.load() is EbsStorageClassEncrypted


# --- evaluate ---------------------------------------------------------------------------------

def test_pass_when_encrypted_is_true_in_any_case() -> None:
    results = _evaluate(_sc("a", "true", kms=True), _sc("b", "TRUE"), _sc("c", " True "),
                        volumes={"a": VolumeUse(3, 2)})

    assert {r: s for r, (s, _) in results.items()} == {
        "storageclass/a": Status.PASS, "storageclass/b": Status.PASS,
        "storageclass/c": Status.PASS}
    assert results["storageclass/a"][1] == {
        "provisioner": "ebs.csi.aws.com", "encrypted_parameter": "true", "kms_key_set": True,
        "default_class": False, "persistent_volumes": 3, "bound_claims": 2}


@pytest.mark.parametrize("encrypted", [None, "false", "no", ""])
def test_fail_when_encrypted_is_absent_or_not_true(encrypted: str | None) -> None:
    results = _evaluate(_sc("gp2", encrypted, provisioner="kubernetes.io/aws-ebs"))

    status, evidence = results["storageclass/gp2"]
    assert status == Status.FAIL
    assert evidence["encrypted_parameter"] == ("absent" if encrypted is None else encrypted)


def test_other_provisioners_are_not_judged() -> None:
    results = _evaluate(_sc("efs", None, provisioner="efs.csi.aws.com"), _sc("gp3", "true"))

    assert list(results) == ["storageclass/gp3"]


def test_no_ebs_classes_passes_only_because_the_listing_succeeded() -> None:
    results = _evaluate(_sc("efs", None, provisioner="efs.csi.aws.com"))
    empty = _evaluate()

    assert results == {"storageclasses": (Status.PASS, {
        "storage_classes": 1, "provisioners": ("efs.csi.aws.com",)})}
    assert empty["storageclasses"][0] == Status.PASS


@pytest.mark.parametrize("reason", [UnknownReason.ACCESS_DENIED, UnknownReason.TIMEOUT,
                                    UnknownReason.UNREACHABLE, UnknownReason.NOT_SUPPORTED])
def test_unverified_when_classes_could_not_be_listed(reason: UnknownReason) -> None:
    unknown = Unknown(reason, "the API server refused", needs=NEEDS_STORAGECLASSES)
    obs = StorageObservation(classes=unknown, volumes={})

    findings = CHECK.evaluate(obs, TARGET, Policy())

    assert [(f.resource, f.status, f.unknown_reason, f.needs) for f in findings] == [
        ("storageclasses", Status.UNVERIFIED, reason, NEEDS_STORAGECLASSES)]


def test_unknown_volumes_keep_the_verdict_and_say_so() -> None:
    denied = Unknown(UnknownReason.ACCESS_DENIED, "denied", needs=NEEDS_PERSISTENTVOLUMES)

    results = _evaluate(_sc("open", None), _sc("sealed", "true"), volumes=denied)

    assert results["storageclass/open"][0] == Status.FAIL
    assert results["storageclass/sealed"][0] == Status.PASS
    assert results["storageclass/open"][1]["persistent_volumes"] is None
    assert results["storageclass/open"][1]["volume_listing"] == "access_denied"


def test_warn_for_aws_managed_key_when_policy_requires_customer_keys() -> None:
    strict = Policy(require_customer_managed_keys=True)

    results = _evaluate(_sc("aws-key", "true"), _sc("alias", "true", kms=True, customer=False),
                        _sc("cmk", "true", kms=True), policy=strict)

    assert {r: s for r, (s, _) in results.items()} == {
        "storageclass/aws-key": Status.WARN, "storageclass/alias": Status.WARN,
        "storageclass/cmk": Status.PASS}


# --- collect against the stand-in -------------------------------------------------------------

def _run(ctx: CheckContext, target: Target) -> dict[str, tuple[Status, dict[str, object]]]:
    obs = CHECK.collect(ctx, target)
    findings = CHECK.evaluate(obs, target, ctx.policy)
    return {f.resource: (f.status, dict(f.evidence)) for f in findings}


def test_collect_judges_the_lab_cluster(kube_target: Target, kube_standin: KubeApiStandIn,
                                        make_ctx: Callable[..., CheckContext]) -> None:
    results = _run(make_ctx(), kube_target)

    assert {r: s for r, (s, _) in results.items()} == {
        "storageclass/gp2": Status.FAIL, "storageclass/ebs-csi-gp3": Status.FAIL,
        "storageclass/gp3-encrypted": Status.PASS}
    assert results["storageclass/gp2"][1]["default_class"] is True
    assert results["storageclass/gp3-encrypted"][1]["kms_key_set"] is True
    # The audit spool's volume and a Released volume were both provisioned unencrypted.
    assert (results["storageclass/ebs-csi-gp3"][1]["persistent_volumes"],
            results["storageclass/ebs-csi-gp3"][1]["bound_claims"]) == (2, 1)
    assert {(r.method, r.path) for r in kube_standin.requests} == {
        ("GET", SC_PATH), ("GET", PV_PATH)}


def test_collect_never_puts_the_kms_key_in_evidence(kube_target: Target,
                                                    make_ctx: Callable[..., CheckContext]) -> None:
    obs = CHECK.collect(make_ctx(), kube_target)
    findings = CHECK.evaluate(obs, kube_target, Policy())

    assert findings and not any("arn:aws:kms" in repr(f) for f in findings)


def test_collect_shares_listings_through_the_memo(kube_target: Target,
                                                  kube_standin: KubeApiStandIn,
                                                  make_ctx: Callable[..., CheckContext]) -> None:
    ctx = make_ctx()

    CHECK.collect(ctx, kube_target)
    CHECK.collect(ctx, kube_target)

    assert [r.path for r in kube_standin.requests].count(SC_PATH) == 1


def test_collect_forbidden_storageclasses_is_unverified(
        kube_target: Target, kube_standin: KubeApiStandIn,
        make_ctx: Callable[..., CheckContext]) -> None:
    kube_standin.forbid(SC_PATH)

    findings = CHECK.evaluate(CHECK.collect(make_ctx(), kube_target), kube_target, Policy())

    assert [(f.status, f.unknown_reason, f.needs) for f in findings] == [
        (Status.UNVERIFIED, UnknownReason.ACCESS_DENIED, NEEDS_STORAGECLASSES)]


def test_collect_forbidden_volumes_keeps_verdicts(kube_target: Target,
                                                  kube_standin: KubeApiStandIn,
                                                  make_ctx: Callable[..., CheckContext]) -> None:
    kube_standin.forbid(PV_PATH)

    results = _run(make_ctx(), kube_target)

    assert results["storageclass/gp2"][0] == Status.FAIL
    assert results["storageclass/gp2"][1]["volume_listing"] == "access_denied"


@pytest.mark.parametrize(("fault", "reason"), [
    ("hang", UnknownReason.TIMEOUT), ("fail", UnknownReason.UNREACHABLE)])
def test_collect_timeout_and_server_error_are_unverified(
        fault: str, reason: UnknownReason, kube_target: Target, kube_standin: KubeApiStandIn,
        make_ctx: Callable[..., CheckContext]) -> None:
    getattr(kube_standin, fault)(SC_PATH)

    findings = CHECK.evaluate(CHECK.collect(make_ctx(timeout=0.3), kube_target), kube_target,
                              Policy())

    assert [(f.status, f.unknown_reason) for f in findings] == [(Status.UNVERIFIED, reason)]


def test_collect_unreachable_cluster_is_unverified(make_ctx: Callable[..., CheckContext],
                                                   tmp_path: Path) -> None:
    server = KubeApiStandIn([])
    url = server.start()
    server.stop()
    kubeconfig = write_kubeconfig(tmp_path / "gone", url, context="lab")
    target = Target(TargetKind.KUBERNETES, "k8s:gone", "gone",
                    KubernetesClusterConfig(name="gone", kubeconfig=kubeconfig, context="lab"))

    findings = CHECK.evaluate(CHECK.collect(make_ctx(), target), target, Policy())

    assert [(f.status, f.unknown_reason) for f in findings] == [
        (Status.UNVERIFIED, UnknownReason.UNREACHABLE)]


def test_collect_without_a_kubeconfig_raises_probe_unavailable(
        make_ctx: Callable[..., CheckContext], tmp_path: Path) -> None:
    target = Target(TargetKind.KUBERNETES, "k8s:x", "x", KubernetesClusterConfig(
        name="x", kubeconfig=tmp_path / "missing", context="lab"))

    with pytest.raises(ProbeUnavailable) as raised:
        CHECK.collect(make_ctx(), target)

    assert raised.value.unknown.reason == UnknownReason.UNREACHABLE
