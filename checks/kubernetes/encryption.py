"""
Encryption of the volumes a cluster provisions through StorageClasses other than EBS.

Whether a dynamically provisioned volume is encrypted is decided in one of three places:

- by the platform, always: GCE Persistent Disks and Azure managed disks and file shares are
  encrypted at rest whatever the class says; the class can only choose a customer managed key;
- by a class parameter that is off unless set: Ceph RBD and CephFS (`encrypted`), Longhorn
  (`encrypted`), Portworx (`secure`);
- somewhere the Kubernetes API does not show: an EFS file system's own setting, a vSphere storage
  policy, the disks of the nodes that local-path provisioners carve volumes from.

The check reads every StorageClass and PersistentVolume (the listings the EBS check shares
through the memo), judges each class of the first two kinds, reports the third kind as
UNVERIFIED with where the answer lies, and lists per class the claims bound to its volumes
(only those in the inventory's PHI namespaces, when it names any). On EFS it also reads each
volume's `encryptInTransit` attribute: the driver mounts with TLS unless a volume turns it off.

EBS classes are left to `kubernetes.storageclass.ebs_encrypted`; EKS secrets encryption is an
AWS fact, judged on the AWS side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kubernetes.client import CoreV1Api, StorageV1Api

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.kubernetes.storage import (
    EBS_PROVISIONERS,
    NEEDS_PERSISTENTVOLUMES,
    NEEDS_STORAGECLASSES,
)
from hipaacheck.clients.kubernetes import list_all, observe
from hipaacheck.config import KubernetesClusterConfig
from hipaacheck.model import (
    CheckMeta,
    EvidenceValue,
    Fact,
    Family,
    Finding,
    FindingBuilder,
    Operation,
    Severity,
    Standard,
    Status,
    System,
    Target,
    TargetKind,
    Unknown,
    UnknownReason,
)

EFS_PROVISIONER = "efs.csi.aws.com"
MAX_LISTED_CLAIMS = 50
"""At most this many claim names per finding; the count is always complete."""
_SHOWN_CHARS = 16
_DEFAULT_CLASS_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                              "storageclass.beta.kubernetes.io/is-default-class")


@dataclass(frozen=True)
class ProvisionerRule:
    """
    How one provisioner decides encryption, and which class parameters say so.

    `basis` is `platform` (always encrypted at rest), `parameter` (encrypted only when
    `parameter` is "true") or `elsewhere` (decided by `where`, invisible to the cluster).
    Parameter names are lower-case: the drivers match them case-insensitively.
    """

    platform: str
    basis: Literal["platform", "parameter", "elsewhere"]
    parameter: str | None = None
    key_parameters: tuple[str, ...] = ()
    """Parameters naming a customer managed key; empty when no class parameter can."""
    where: str = ""


_GCE_PD = ProvisionerRule("GCE Persistent Disk", "platform",
                          key_parameters=("disk-encryption-kms-key",))
_AZURE_DISK = ProvisionerRule("Azure managed disk", "platform",
                              key_parameters=("diskencryptionsetid",))
_AZURE_FILE = ProvisionerRule("Azure Files share", "platform")
_CEPH_RBD = ProvisionerRule("Ceph RBD", "parameter", "encrypted", ("encryptionkmsid",))
_LOCAL = ProvisionerRule("node-local storage", "elsewhere",
                         where="the disks of the node each volume is carved from")
_VSPHERE = ProvisionerRule("vSphere volume", "elsewhere",
                           where="the vSphere storage policy (encryption is a VM storage "
                                 "policy rule)")
_PORTWORX = ProvisionerRule("Portworx volume", "parameter", "secure")

PROVISIONER_RULES: Mapping[str, ProvisionerRule] = {
    "pd.csi.storage.gke.io": _GCE_PD,
    "kubernetes.io/gce-pd": _GCE_PD,
    "disk.csi.azure.com": _AZURE_DISK,
    "kubernetes.io/azure-disk": _AZURE_DISK,
    "file.csi.azure.com": _AZURE_FILE,
    "kubernetes.io/azure-file": _AZURE_FILE,
    "rbd.csi.ceph.com": _CEPH_RBD,
    "cephfs.csi.ceph.com": ProvisionerRule("CephFS", "parameter", "encrypted",
                                           ("encryptionkmsid",)),
    "driver.longhorn.io": ProvisionerRule("Longhorn volume", "parameter", "encrypted"),
    "pxd.portworx.com": _PORTWORX,
    "kubernetes.io/portworx-volume": _PORTWORX,
    EFS_PROVISIONER: ProvisionerRule("Amazon EFS", "elsewhere",
                                     where="the EFS file system's own encryption setting"),
    "csi.vsphere.vmware.com": _VSPHERE,
    "kubernetes.io/vsphere-volume": _VSPHERE,
    "kubernetes.io/no-provisioner": _LOCAL,
    "rancher.io/local-path": _LOCAL,
    "openebs.io/local": _LOCAL,
    "hostpath.csi.k8s.io": _LOCAL,
}
"""The provisioners this check knows; any other is UNVERIFIED, never assumed encrypted."""


@dataclass(frozen=True)
class ClassFacts:
    """
    What the check needs of one StorageClass. Key names and ids are never kept, only whether
    one is set; the encryption parameter is kept as written, cut to a few characters.
    """

    name: str
    provisioner: str
    default_class: bool
    encryption_parameter: str | None
    """The value of the rule's encryption parameter; None when absent or the rule has none."""
    key_set: bool
    file_system_id: str | None = None
    """EFS only: the file system the class provisions access points on."""


@dataclass(frozen=True)
class ClassVolumes:
    """The PersistentVolumes of one StorageClass and the claims bound to them."""

    volumes: int
    claims: tuple[tuple[str, str], ...] = ()
    """(namespace, name) of every claim bound to one of the class's volumes."""
    transit_off: tuple[str, ...] = ()
    """EFS only: names of volumes whose `encryptInTransit` attribute is "false"."""


@dataclass(frozen=True)
class ClassEncryptionObservation:
    """The cluster's StorageClasses and, by class name, their volumes and claims."""

    classes: Fact[tuple[ClassFacts, ...]]
    volumes: Fact[Mapping[str, ClassVolumes]]
    phi_namespaces: tuple[str, ...] = field(default=())
    """The inventory's PHI namespaces; empty means every namespace may hold PHI."""


def _lowered(mapping: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (mapping or {}).items()}


def class_facts(storage_class: Any) -> ClassFacts:
    """The facts of a `V1StorageClass`, read through its provisioner's rule."""
    params = _lowered(storage_class.parameters)
    rule = PROVISIONER_RULES.get(storage_class.provisioner)
    annotations = storage_class.metadata.annotations or {}
    parameter = params.get(rule.parameter) if rule and rule.parameter else None
    key_set = rule is not None and any(params.get(k, "").strip() for k in rule.key_parameters)
    fs_id = params.get("filesystemid") if storage_class.provisioner == EFS_PROVISIONER else None
    return ClassFacts(
        name=storage_class.metadata.name, provisioner=storage_class.provisioner,
        default_class=any(annotations.get(a) == "true" for a in _DEFAULT_CLASS_ANNOTATIONS),
        encryption_parameter=None if parameter is None else parameter[:_SHOWN_CHARS],
        key_set=key_set, file_system_id=fs_id)


def _class_name(volume: Any) -> str | None:
    annotations = volume.metadata.annotations or {}
    return (volume.spec.storage_class_name
            or annotations.get("volume.beta.kubernetes.io/storage-class"))


def _transit_off(volume: Any) -> bool:
    csi = volume.spec.csi
    if csi is None or csi.driver != EFS_PROVISIONER:
        return False
    attributes = _lowered(csi.volume_attributes)
    return attributes.get("encryptintransit", "").strip().lower() == "false"


def class_volumes(volumes: Sequence[Any]) -> dict[str, ClassVolumes]:
    """Group `V1PersistentVolume`s by StorageClass: counts, bound claims, EFS without TLS."""
    grouped: dict[str, tuple[int, list[tuple[str, str]], list[str]]] = {}
    for volume in volumes:
        name = _class_name(volume)
        if not name:
            continue
        count, claims, transit_off = grouped.get(name, (0, [], []))
        ref = volume.spec.claim_ref
        if ref is not None and volume.status is not None and volume.status.phase == "Bound":
            claims.append((str(ref.namespace or ""), str(ref.name or "")))
        if _transit_off(volume):
            transit_off.append(volume.metadata.name)
        grouped[name] = (count + 1, claims, transit_off)
    return {name: ClassVolumes(count, tuple(sorted(claims)), tuple(sorted(off)))
            for name, (count, claims, off) in grouped.items()}


def _phi_namespaces(target: Target) -> tuple[str, ...]:
    config = target.config
    if isinstance(config, KubernetesClusterConfig):
        return tuple(config.namespaces)
    return ()


class StorageClassEncryption(Check[ClassEncryptionObservation]):
    """
    Every StorageClass of a provisioner other than EBS provisions encrypted volumes.
    """

    meta = CheckMeta(
        id="kubernetes.storageclass.encryption",
        title="StorageClasses other than EBS provision encrypted volumes",
        family=Family.ENCRYPTION,
        standard=Standard.ENCRYPTION,
        citations=("164.312(a)(2)(iv)", "164.312(e)(2)(ii)"),
        severity=Severity.HIGH,
        target_kind=TargetKind.KUBERNETES,
        description=(
            "Judges each StorageClass by how its provisioner encrypts: GCE Persistent Disk and "
            "Azure disks and files are always encrypted at rest (the class may name a customer "
            "managed key); Ceph RBD, CephFS, Longhorn and Portworx encrypt only when a class "
            "parameter says so; EFS, vSphere and node-local volumes are encrypted, or not, "
            "where the cluster cannot see, so those classes are reported as unverified, as is "
            "any provisioner the check does not know. EFS volumes that turn off TLS "
            "(encryptInTransit: \"false\") fail. Each finding lists the claims bound to the "
            "class's volumes, in the PHI namespaces when the inventory names them."),
        remediation=(
            "Create a replacement StorageClass that turns encryption on (encrypted: \"true\" "
            "with a KMS id for Ceph and Longhorn, secure: \"true\" for Portworx, a customer "
            "managed key where policy requires one), migrate the listed claims to it (snapshot "
            "and restore), and delete the old class. For EFS, enable encryption on the file "
            "system and never set encryptInTransit: \"false\". For classes whose encryption is "
            "decided outside the cluster, keep evidence of that setting for the report."),
        operations=(
            Operation(System.KUBERNETES, NEEDS_STORAGECLASSES,
                      "read each class's provisioner and parameters"),
            Operation(System.KUBERNETES, NEEDS_PERSISTENTVOLUMES,
                      "find the volumes and bound claims of each class, and EFS TLS settings"),
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> ClassEncryptionObservation:
        """List StorageClasses and PersistentVolumes once per scan (shared through the memo)."""
        client = ctx.clients.kubernetes(target.config)
        classes = observe(lambda: ctx.memo.get(
            ("kubernetes", target.id, "storage.k8s.io/storageclasses"),
            lambda: list_all(StorageV1Api(client).list_storage_class, timeout=ctx.timeout)),
            needs=NEEDS_STORAGECLASSES)
        volumes = observe(lambda: ctx.memo.get(
            ("kubernetes", target.id, "persistentvolumes"),
            lambda: list_all(CoreV1Api(client).list_persistent_volume, timeout=ctx.timeout)),
            needs=NEEDS_PERSISTENTVOLUMES)
        return ClassEncryptionObservation(
            classes=classes if isinstance(classes, Unknown)
            else tuple(class_facts(c) for c in classes),
            volumes=volumes if isinstance(volumes, Unknown) else class_volumes(volumes),
            phi_namespaces=_phi_namespaces(target))

    def evaluate(self, obs: ClassEncryptionObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per non-EBS StorageClass; UNVERIFIED when classes could not be listed."""
        build = self.findings(target)
        if isinstance(obs.classes, Unknown):
            return [build.unverified("storageclasses", obs.classes,
                                     "the cluster's StorageClasses")]
        judged = [c for c in obs.classes if c.provisioner not in EBS_PROVISIONERS]
        if not judged:
            return [build.passed("storageclasses", "No StorageClass of a provisioner other "
                                 "than EBS exists", evidence={
                                     "storage_classes": len(obs.classes)})]
        return [_judge(build, sc, obs, policy) for sc in judged]


def _claims_evidence(sc: ClassFacts, obs: ClassEncryptionObservation
                     ) -> dict[str, EvidenceValue]:
    """Volume and claim counts, and the claim names (PHI namespaces only, when configured)."""
    if isinstance(obs.volumes, Unknown):
        return {"persistent_volumes": None, "volume_listing": obs.volumes.reason.value}
    use = obs.volumes.get(sc.name, ClassVolumes(0))
    phi = set(obs.phi_namespaces)
    listed = [c for c in use.claims if not phi or c[0] in phi]
    evidence: dict[str, EvidenceValue] = {
        "persistent_volumes": use.volumes, "bound_claims": len(use.claims),
        "claims": tuple(f"{ns}/{name}" for ns, name in listed[:MAX_LISTED_CLAIMS])}
    if phi:
        evidence["phi_namespace_claims"] = len(listed)
    return evidence


def _evidence(sc: ClassFacts, rule: ProvisionerRule | None,
              obs: ClassEncryptionObservation) -> dict[str, EvidenceValue]:
    evidence: dict[str, EvidenceValue] = {
        "provisioner": sc.provisioner,
        "encryption_basis": rule.basis if rule else "unknown_provisioner",
        "default_class": sc.default_class}
    if rule and rule.parameter:
        evidence[f"{rule.parameter}_parameter"] = (
            "absent" if sc.encryption_parameter is None else sc.encryption_parameter)
    if rule and rule.key_parameters:
        evidence["customer_managed_key_set"] = sc.key_set
    if sc.file_system_id:
        evidence["file_system_id"] = sc.file_system_id[:32]
    return {**evidence, **_claims_evidence(sc, obs)}


def _judge(build: FindingBuilder[ClassEncryptionObservation], sc: ClassFacts,
           obs: ClassEncryptionObservation, policy: Policy) -> Finding:
    rule = PROVISIONER_RULES.get(sc.provisioner)
    resource = f"storageclass/{sc.name}"
    evidence = _evidence(sc, rule, obs)
    if rule is None:
        return build.make(
            Status.UNVERIFIED, resource,
            f"StorageClass {sc.name} uses provisioner {sc.provisioner}, whose encryption "
            "hipaacheck cannot read from a StorageClass", evidence=evidence,
            unknown_reason=UnknownReason.NOT_VISIBLE,
            needs=f"evidence that {sc.provisioner} volumes are encrypted at rest")
    if rule.basis == "platform":
        return _judge_platform(build, sc, rule, resource, evidence, policy)
    if rule.basis == "parameter":
        return _judge_parameter(build, sc, rule, resource, evidence, policy)
    return _judge_elsewhere(build, sc, rule, resource, evidence, obs)


def _key_verdict(build: FindingBuilder[ClassEncryptionObservation], sc: ClassFacts,
                 rule: ProvisionerRule, resource: str,
                 evidence: dict[str, EvidenceValue]) -> Finding | None:
    """Under a customer-managed-key policy: WARN or UNVERIFIED without one, else None."""
    if sc.key_set:
        return None
    if not rule.key_parameters:
        return build.make(
            Status.UNVERIFIED, resource,
            f"StorageClass {sc.name} ({rule.platform}) is encrypted, but whether with a "
            "customer managed key is set outside the cluster, where policy requires one",
            evidence=evidence, unknown_reason=UnknownReason.NOT_VISIBLE,
            needs=f"the key configuration of the {rule.platform} storage account")
    return build.warned(resource, f"StorageClass {sc.name} ({rule.platform}) encrypts with a "
                                  "platform-managed key, where policy requires a customer "
                                  "managed key", evidence=evidence)


def _judge_platform(build: FindingBuilder[ClassEncryptionObservation], sc: ClassFacts,
                    rule: ProvisionerRule, resource: str, evidence: dict[str, EvidenceValue],
                    policy: Policy) -> Finding:
    if policy.require_customer_managed_keys:
        verdict = _key_verdict(build, sc, rule, resource, evidence)
        if verdict is not None:
            return verdict
    key = "a customer managed key" if sc.key_set else "a platform-managed key"
    return build.passed(resource, f"StorageClass {sc.name} provisions {rule.platform} volumes, "
                                  f"which the platform always encrypts at rest (with {key})",
                        evidence=evidence)


def _judge_parameter(build: FindingBuilder[ClassEncryptionObservation], sc: ClassFacts,
                     rule: ProvisionerRule, resource: str, evidence: dict[str, EvidenceValue],
                     policy: Policy) -> Finding:
    value = sc.encryption_parameter
    if value is None or value.strip().lower() != "true":
        shown = "absent" if value is None else repr(value)
        return build.failed(resource, f"StorageClass {sc.name} provisions unencrypted "
                                      f"{rule.platform} volumes (parameter {rule.parameter} is "
                                      f"{shown})", evidence=evidence)
    if policy.require_customer_managed_keys:
        verdict = _key_verdict(build, sc, rule, resource, evidence)
        if verdict is not None:
            return verdict
    return build.passed(resource, f"StorageClass {sc.name} provisions encrypted "
                                  f"{rule.platform} volumes", evidence=evidence)


def _judge_elsewhere(build: FindingBuilder[ClassEncryptionObservation], sc: ClassFacts,
                     rule: ProvisionerRule, resource: str, evidence: dict[str, EvidenceValue],
                     obs: ClassEncryptionObservation) -> Finding:
    if sc.provisioner == EFS_PROVISIONER:
        off = () if isinstance(obs.volumes, Unknown) else obs.volumes.get(
            sc.name, ClassVolumes(0)).transit_off
        evidence["volumes_without_tls"] = None if isinstance(obs.volumes, Unknown) else len(off)
        if off:
            evidence["volumes_without_tls_names"] = off[:MAX_LISTED_CLAIMS]
            return build.failed(resource, f"StorageClass {sc.name}: {len(off)} EFS volume(s) "
                                          "mount without TLS (encryptInTransit is \"false\")",
                                evidence=evidence)
        needs = "elasticfilesystem:DescribeFileSystems (the AWS encryption checks judge EFS)"
    else:
        needs = f"evidence of {rule.where}"
    return build.make(
        Status.UNVERIFIED, resource,
        f"StorageClass {sc.name} provisions {rule.platform} volumes, whose encryption at rest "
        f"is decided by {rule.where}, which the Kubernetes API does not show",
        evidence=evidence, unknown_reason=UnknownReason.NOT_VISIBLE, needs=needs)
