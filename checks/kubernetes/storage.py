"""
Encryption at rest of the EBS volumes a cluster provisions: StorageClass `encrypted` parameters.

On EKS, a PersistentVolumeClaim gets an EBS volume from its StorageClass, and the EBS CSI driver
(`ebs.csi.aws.com`) and the legacy in-tree provisioner (`kubernetes.io/aws-ebs`) encrypt it only
when the class says `encrypted: "true"`. The check reads every StorageClass, judges the EBS ones,
and counts the PersistentVolumes each has provisioned so a report shows what is at stake.
Classes of other provisioners (EFS, local volumes) are not judged here.

NOTE: an account-wide "EBS encryption by default" setting can encrypt volumes that a class leaves
unencrypted; that setting is an AWS fact, so this check judges only what the cluster declares.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from kubernetes.client import CoreV1Api, StorageV1Api

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.clients.kubernetes import list_all, observe
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
    System,
    Target,
    TargetKind,
    Unknown,
)

T = TypeVar("T")
U = TypeVar("U")

EBS_PROVISIONERS = frozenset({"ebs.csi.aws.com", "kubernetes.io/aws-ebs"})
NEEDS_STORAGECLASSES = "list storage.k8s.io/storageclasses"
NEEDS_PERSISTENTVOLUMES = "list persistentvolumes"
_DEFAULT_CLASS_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                              "storageclass.beta.kubernetes.io/is-default-class")
_AWS_MANAGED_KEY_ALIAS = "alias/aws/ebs"
_SHOWN_CHARS = 16


@dataclass(frozen=True)
class StorageClassFacts:
    """
    What the check needs of one StorageClass. The KMS key itself is never kept, only whether one
    is named and whether it is the AWS-managed `aws/ebs` key.
    """

    name: str
    provisioner: str
    encrypted: str | None
    """The `encrypted` parameter as written (keys compared case-insensitively); None if absent."""
    kms_key_set: bool
    customer_managed_key: bool
    default_class: bool


@dataclass(frozen=True)
class VolumeUse:
    """The PersistentVolumes of one StorageClass."""

    volumes: int
    """Every PersistentVolume of the class, whatever its phase: a Released volume holds data too."""
    bound_claims: int
    """Those bound to a PersistentVolumeClaim."""


@dataclass(frozen=True)
class StorageObservation:
    """The cluster's StorageClasses and, by class name, the volumes they provisioned."""

    classes: Fact[tuple[StorageClassFacts, ...]]
    volumes: Fact[Mapping[str, VolumeUse]]


def _lowered(mapping: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (mapping or {}).items()}


def storage_class_facts(storage_class: Any) -> StorageClassFacts:
    """The facts of a `V1StorageClass`; parameter keys match case-insensitively, as the drivers'."""
    params = _lowered(storage_class.parameters)
    annotations = storage_class.metadata.annotations or {}
    kms_key = params.get("kmskeyid", "").strip()
    return StorageClassFacts(
        name=storage_class.metadata.name,
        provisioner=storage_class.provisioner,
        encrypted=params.get("encrypted"),
        kms_key_set=bool(kms_key),
        customer_managed_key=bool(kms_key) and not kms_key.endswith(_AWS_MANAGED_KEY_ALIAS),
        default_class=any(annotations.get(a) == "true" for a in _DEFAULT_CLASS_ANNOTATIONS))


def volume_use(volumes: Sequence[Any]) -> dict[str, VolumeUse]:
    """Count `V1PersistentVolume`s by StorageClass name (the beta annotation is honoured too)."""
    counts: dict[str, tuple[int, int]] = {}
    for volume in volumes:
        annotations = volume.metadata.annotations or {}
        name = (volume.spec.storage_class_name
                or annotations.get("volume.beta.kubernetes.io/storage-class"))
        if not name:
            continue
        bound = volume.status is not None and volume.status.phase == "Bound" \
            and volume.spec.claim_ref is not None
        total, claims = counts.get(name, (0, 0))
        counts[name] = (total + 1, claims + int(bound))
    return {name: VolumeUse(total, claims) for name, (total, claims) in counts.items()}


def _fact_map(fact: Fact[T], convert: Callable[[T], U]) -> Fact[U]:
    return fact if isinstance(fact, Unknown) else convert(fact)


class EbsStorageClassEncrypted(Check[StorageObservation]):
    """
    Every StorageClass that provisions EBS volumes sets `encrypted: "true"`.
    """

    meta = CheckMeta(
        id="kubernetes.storageclass.ebs_encrypted",
        title="EBS StorageClasses provision encrypted volumes",
        family=Family.ENCRYPTION,
        standard=Standard.ENCRYPTION,
        citations=("164.312(a)(2)(iv)",),
        severity=Severity.HIGH,
        target_kind=TargetKind.KUBERNETES,
        description=(
            "A PersistentVolumeClaim gets an EBS volume from its StorageClass, and the EBS CSI "
            "driver and the in-tree aws-ebs provisioner encrypt that volume only when the class "
            "sets the parameter encrypted: \"true\". A class without it provisions plaintext "
            "volumes for whatever PHI the workloads write."),
        remediation=(
            "Create a replacement StorageClass with parameters encrypted: \"true\" and a "
            "customer managed kmsKeyId (StorageClass parameters are immutable), make it the "
            "default class, move workloads to it (snapshot, then restore into an encrypted "
            "volume), and delete the unencrypted class. Enable EBS encryption by default in "
            "the account as a backstop."),
        operations=(
            Operation(System.KUBERNETES, NEEDS_STORAGECLASSES,
                      "read each class's provisioner and parameters"),
            Operation(System.KUBERNETES, NEEDS_PERSISTENTVOLUMES,
                      "count the volumes each class has provisioned"),
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> StorageObservation:
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
        return StorageObservation(
            classes=_fact_map(classes, lambda items: tuple(map(storage_class_facts, items))),
            volumes=_fact_map(volumes, volume_use))

    def evaluate(self, obs: StorageObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per EBS StorageClass; UNVERIFIED when the classes could not be listed."""
        build = self.findings(target)
        classes = obs.classes
        if isinstance(classes, Unknown):
            return [build.unverified("storageclasses", classes, "the cluster's StorageClasses")]
        ebs = [c for c in classes if c.provisioner in EBS_PROVISIONERS]
        if not ebs:
            return [build.passed("storageclasses", "No StorageClass provisions EBS volumes",
                                 evidence={"storage_classes": len(classes),
                                           "provisioners": tuple(sorted(
                                               {c.provisioner for c in classes}))})]
        return [_judge(build, c, obs.volumes, policy) for c in ebs]


def _usage_evidence(name: str, volumes: Fact[Mapping[str, VolumeUse]]
                    ) -> dict[str, EvidenceValue]:
    if isinstance(volumes, Unknown):
        return {"persistent_volumes": None, "volume_listing": volumes.reason.value}
    use = volumes.get(name, VolumeUse(0, 0))
    return {"persistent_volumes": use.volumes, "bound_claims": use.bound_claims}


def _judge(build: FindingBuilder[StorageObservation], sc: StorageClassFacts,
           volumes: Fact[Mapping[str, VolumeUse]], policy: Policy) -> Finding:
    resource = f"storageclass/{sc.name}"
    # The parameter is meant to be a boolean; anything longer is cut, never echoed whole.
    written = "absent" if sc.encrypted is None else sc.encrypted[:_SHOWN_CHARS]
    evidence: dict[str, EvidenceValue] = {
        "provisioner": sc.provisioner,
        "encrypted_parameter": written,
        "kms_key_set": sc.kms_key_set,
        "default_class": sc.default_class,
        **_usage_evidence(sc.name, volumes),
    }
    if sc.encrypted is None or sc.encrypted.strip().lower() != "true":
        shown = written if sc.encrypted is None else repr(written)
        return build.failed(resource, f"StorageClass {sc.name} provisions unencrypted EBS volumes "
                                      f"(parameter encrypted is {shown})", evidence=evidence)
    if policy.require_customer_managed_keys and not sc.customer_managed_key:
        return build.warned(resource, f"StorageClass {sc.name} encrypts EBS volumes with the "
                                      "AWS-managed key, where policy requires a customer managed "
                                      "key", evidence=evidence)
    return build.passed(resource, f"StorageClass {sc.name} provisions encrypted EBS volumes",
                        evidence=evidence)
