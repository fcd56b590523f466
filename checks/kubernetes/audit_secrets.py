"""
Audit store isolation on Kubernetes: does the application hold the audit writer's credentials,
or may its ServiceAccount read or change the audit store's Secret?

- `SharedAuditSecret` compares, for every audit writer workload, the credentials it takes from
  Secrets with those every application workload takes: the same Secret and key, or Secrets whose
  values are equal. Values are compared as keyed hashes (HMAC under a key that lives for one
  collect step); neither a value nor a digest leaves the collect step, only which pairs matched.
- `AppCanAccessAuditSecret` reads the cluster's RBAC (Roles, ClusterRoles and their bindings) and
  reports every application ServiceAccount that may get, list, watch, update, patch or delete an
  audit store Secret, and through which binding.

Workloads are Deployments, StatefulSets and DaemonSets. Which are the application's and which
the audit writer's comes from the inventory's `application_workloads` and
`audit_writer_workloads` (glob patterns over `namespace/Kind/name`); by default an audit writer
is a workload whose name or `app.kubernetes.io` name, part-of or component label mentions audit,
and the application is every other workload in the cluster's PHI namespaces (every namespace
but the `kube-*` ones when none is configured). Audit store Secrets are the inventory's
`audit_secrets` (`namespace/name`), by default every Secret an audit writer references.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kubernetes.client import AppsV1Api, CoreV1Api, RbacAuthorizationV1Api

from hipaacheck.check import Check, CheckContext, Policy
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
from hipaacheck.redact import Fingerprinter

_CITATIONS = ("164.312(b)", "164.312(c)(1)")
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
WORKLOAD_KINDS = (("Deployment", "list_deployment_for_all_namespaces", "apps/deployments"),
                  ("StatefulSet", "list_stateful_set_for_all_namespaces", "apps/statefulsets"),
                  ("DaemonSet", "list_daemon_set_for_all_namespaces", "apps/daemonsets"))
CREDENTIAL_NAME = re.compile(
    r"pass|pwd|secret|token|dsn|conn|credential|user|login|auth|api[-_]?key|url|uri",
    re.IGNORECASE)
NOT_CREDENTIAL = re.compile(r"(^|[._-])(ca|tls)\.(crt|key)$|\.(crt|pem|cert)$", re.IGNORECASE)
CERTIFICATE_SECRET = re.compile(r"(^|[-_.])(tls|certs?|ca)([-_.]|$)", re.IGNORECASE)
"""Secrets named like certificates are never fetched: they hold keys, not DB credentials."""
SECRET_VERBS = ("get", "list", "watch", "update", "patch", "delete", "deletecollection")
WRITE_VERBS = frozenset({"update", "patch", "delete", "deletecollection", "*"})
_AUDIT_WORD = re.compile(r"audit", re.IGNORECASE)
_AUDIT_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/part-of",
                 "app.kubernetes.io/component")
NEEDS_SECRETS = "get secrets"


def _k8s(action: str, why: str) -> Operation:
    return Operation(System.KUBERNETES, action, why)


_WORKLOAD_OPERATIONS = tuple(_k8s(f"list {path}", "find the application's and the audit "
                                  "writer's workloads and the Secrets they use")
                             for _kind, _method, path in WORKLOAD_KINDS)


def _cluster(target: Target) -> KubernetesClusterConfig:
    if not isinstance(target.config, KubernetesClusterConfig):
        raise TypeError(f"target {target.id} carries no Kubernetes cluster configuration")
    return target.config


def _patterns(cluster: KubernetesClusterConfig, name: str) -> tuple[str, ...]:
    value = getattr(cluster, name, None)
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return ()


# --- workloads and the Secrets they use --------------------------------------------------------


@dataclass(frozen=True, order=True)
class SecretUse:
    """One way a workload takes values from a Secret."""

    namespace: str
    secret: str
    key: str | None
    """The key; None when every key is taken (envFrom, or a volume without items)."""
    via: str
    """`env NAME`, `envFrom` or `volume NAME`."""


@dataclass(frozen=True)
class Workload:
    """A Deployment, StatefulSet or DaemonSet: where it runs, as whom, with which Secrets."""

    namespace: str
    kind: str
    name: str
    service_account: str
    labels: tuple[tuple[str, str], ...]
    secrets: tuple[SecretUse, ...]

    @property
    def ref(self) -> str:
        """`namespace/Kind/name`, the resource name and what inventory patterns match."""
        return f"{self.namespace}/{self.kind}/{self.name}"


def _env_uses(namespace: str, container: Mapping[str, Any]) -> list[SecretUse]:
    uses = []
    for env in container.get("env") or ():
        ref = ((env.get("valueFrom") or {}).get("secretKeyRef")) or {}
        if ref.get("name"):
            uses.append(SecretUse(namespace, str(ref["name"]), str(ref.get("key")),
                                  f"env {env.get('name')}"))
    for source in container.get("envFrom") or ():
        ref = source.get("secretRef") or {}
        if ref.get("name"):
            uses.append(SecretUse(namespace, str(ref["name"]), None, "envFrom"))
    return uses


def _volume_uses(namespace: str, volume: Mapping[str, Any]) -> list[SecretUse]:
    sources = [volume.get("secret") or {}]
    sources += [s.get("secret") or {} for s in (volume.get("projected") or {}).get("sources") or ()]
    uses = []
    for source in sources:
        name = source.get("secretName") or source.get("name")
        if not name:
            continue
        items = source.get("items") or ()
        keys: Iterable[str | None] = [str(i.get("key")) for i in items] or [None]
        uses += [SecretUse(namespace, str(name), key, f"volume {volume.get('name')}")
                 for key in keys]
    return uses


def workload_from(kind: str, raw: Mapping[str, Any]) -> Workload:
    """A workload from its API object (as `sanitize_for_serialization` gives it)."""
    meta = raw.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default")
    pod = ((raw.get("spec") or {}).get("template") or {}).get("spec") or {}
    uses: list[SecretUse] = []
    for container in [*(pod.get("initContainers") or ()), *(pod.get("containers") or ())]:
        uses += _env_uses(namespace, container)
    for volume in pod.get("volumes") or ():
        uses += _volume_uses(namespace, volume)
    labels = tuple(sorted((str(k), str(v)) for k, v in (meta.get("labels") or {}).items()))
    account = pod.get("serviceAccountName") or pod.get("serviceAccount") or "default"
    return Workload(namespace, kind, str(meta.get("name")), str(account), labels,
                    tuple(sorted(set(uses))))


def _listed(ctx: CheckContext, cluster: KubernetesClusterConfig, api: Any, method: str,
            needs: str) -> Fact[list[Any]]:
    """Every item of one list call, read once per scan and cluster."""
    def compute() -> list[Any]:
        return list_all(getattr(api, method), timeout=ctx.timeout)

    def shared() -> list[Any]:
        return ctx.memo.get(("kubernetes.audit", cluster.name, method), compute)

    return observe(shared, needs=needs)


def list_workloads(ctx: CheckContext, cluster: KubernetesClusterConfig,
                   client: Any) -> Fact[tuple[Workload, ...]]:
    """Every Deployment, StatefulSet and DaemonSet of the cluster, read once per scan."""
    apps = AppsV1Api(client)
    found: list[Workload] = []
    for kind, method, path in WORKLOAD_KINDS:
        items = _listed(ctx, cluster, apps, method, f"list {path}")
        if isinstance(items, Unknown):
            return items
        found += [workload_from(kind, client.sanitize_for_serialization(item)) for item in items]
    return tuple(sorted(found, key=lambda w: w.ref))


Role = Literal["application", "audit_writer", "other"]


def looks_like_audit(workload: Workload) -> bool:
    """Whether a workload's name or app.kubernetes.io labels mention audit."""
    labels = dict(workload.labels)
    return bool(_AUDIT_WORD.search(workload.name)) or any(
        _AUDIT_WORD.search(labels.get(key, "")) for key in _AUDIT_LABELS)


def classify(workload: Workload, cluster: KubernetesClusterConfig) -> Role:
    """The workload's part, by the inventory's patterns or by the defaults."""
    writers = _patterns(cluster, "audit_writer_workloads")
    apps = _patterns(cluster, "application_workloads")
    if writers:
        if any(fnmatch.fnmatchcase(workload.ref, p) for p in writers):
            return "audit_writer"
    elif looks_like_audit(workload):
        return "audit_writer"
    if apps:
        return "application" if any(fnmatch.fnmatchcase(workload.ref, p) for p in apps) \
            else "other"
    phi = set(cluster.namespaces)
    in_scope = workload.namespace in phi if phi else workload.namespace not in SYSTEM_NAMESPACES
    return "application" if in_scope else "other"


def split_workloads(workloads: Sequence[Workload], cluster: KubernetesClusterConfig
                    ) -> tuple[tuple[Workload, ...], tuple[Workload, ...]]:
    """(application workloads, audit writer workloads)."""
    roles = {w.ref: classify(w, cluster) for w in workloads}
    return (tuple(w for w in workloads if roles[w.ref] == "application"),
            tuple(w for w in workloads if roles[w.ref] == "audit_writer"))


def is_credential(use: SecretUse, key: str) -> bool:
    """Whether a Secret key (taken as `use`) carries a credential rather than, say, a CA."""
    if NOT_CREDENTIAL.search(key):
        return False
    return bool(CREDENTIAL_NAME.search(key) or CREDENTIAL_NAME.search(use.via))


# --- kubernetes.audit.shared_secret ------------------------------------------------------------


@dataclass(frozen=True)
class WriterComparison:
    """One audit writer against every application workload: what they share."""

    writer: str
    shared_refs: tuple[str, ...]
    """`app-ref env X -> ns/secret/key`: the same Secret and key."""
    equal_values: tuple[str, ...]
    """`app ns/secret/key = writer ns/secret/key`: different keys, equal values."""
    compared: int
    unreadable: Unknown | None = None
    """Why some values could not be compared (a Secret could not be read)."""


@dataclass(frozen=True)
class SharedSecretObservation:
    """Every audit writer's comparison, or why the workloads could not be listed."""

    comparisons: Fact[tuple[WriterComparison, ...]]
    applications: int = 0
    discovered: bool = True


class _SecretReader:
    """Reads each Secret once, digests its credential values and forgets the values."""

    def __init__(self, ctx: CheckContext, client: Any) -> None:
        self._core = CoreV1Api(client)
        self._timeout = ctx.timeout
        self._digests = Fingerprinter()
        self._cache: dict[tuple[str, str], Fact[dict[str, str]]] = {}

    def digests(self, namespace: str, name: str) -> Fact[dict[str, str]]:
        """Key to keyed digest of every key of the Secret."""
        if (namespace, name) not in self._cache:
            self._cache[(namespace, name)] = self._read(namespace, name)
        return self._cache[(namespace, name)]

    def _read(self, namespace: str, name: str) -> Fact[dict[str, str]]:
        secret = observe(lambda: self._core.read_namespaced_secret(
            name, namespace, _request_timeout=self._timeout), needs=f"get secrets in {namespace}")
        if isinstance(secret, Unknown):
            if secret.reason is UnknownReason.NOT_SUPPORTED:
                return Unknown(UnknownReason.NOT_VISIBLE, f"Secret {namespace}/{name} does not "
                               "exist", f"the Secret {namespace}/{name}")
            return secret
        result: dict[str, str] = {}
        for key, encoded in (secret.data or {}).items():
            if NOT_CREDENTIAL.search(str(key)):
                continue
            try:
                result[str(key)] = self._digests.digest(base64.b64decode(encoded, validate=True))
            except (binascii.Error, ValueError):
                result[str(key)] = self._digests.digest(str(encoded))
        return result

    def credentials(self, use: SecretUse) -> Fact[dict[str, str]]:
        """The credential keys `use` takes, with their digests (no read when it takes none)."""
        if CERTIFICATE_SECRET.search(use.secret) or (
                use.key is not None and not is_credential(use, use.key)):
            return {}
        digests = self.digests(use.namespace, use.secret)
        if isinstance(digests, Unknown):
            return digests
        keys = [use.key] if use.key is not None else list(digests)
        return {k: digests[k] for k in keys if k in digests and is_credential(use, k)}


def _ref(use: SecretUse, key: str | None = None) -> str:
    return f"{use.namespace}/{use.secret}/{key or use.key or '*'}"


def compare_writer(writer: Workload, applications: Sequence[Workload],
                   reader: _SecretReader) -> WriterComparison:
    """What `writer` shares with the applications: references, then equal values."""
    writer_refs = {(u.namespace, u.secret) for u in writer.secrets}
    shared = [f"{app.ref} {use.via} -> {_ref(use)}" for app in applications
              for use in app.secrets if (use.namespace, use.secret) in writer_refs]
    writer_values: dict[str, str] = {}
    unreadable: Unknown | None = None
    for use in writer.secrets:
        found = reader.credentials(use)
        if isinstance(found, Unknown):
            unreadable = unreadable or found
            continue
        writer_values.update({_ref(use, k): d for k, d in found.items()})
    equal, compared = [], 0
    for app in applications:
        for use in app.secrets:
            if (use.namespace, use.secret) in writer_refs:
                continue
            found = reader.credentials(use)
            if isinstance(found, Unknown):
                unreadable = unreadable or found
                continue
            for key, digest in found.items():
                compared += len(writer_values)
                equal += [f"{app.ref} {_ref(use, key)} = {ref}"
                          for ref, other in writer_values.items() if other == digest]
    return WriterComparison(writer.ref, tuple(dict.fromkeys(shared)),
                            tuple(dict.fromkeys(equal)), compared, unreadable)


class SharedAuditSecret(Check[SharedSecretObservation]):
    """
    The audit writer's credentials are not the application's: no shared Secret, no equal value.
    """

    meta = CheckMeta(
        id="kubernetes.audit.shared_secret",
        title="The audit writer's credentials are not shared with the application",
        family=Family.AUDIT,
        standard=Standard.AUDIT_CONTROLS,
        citations=_CITATIONS,
        severity=Severity.HIGH,
        target_kind=TargetKind.KUBERNETES,
        description=(
            "Lists Deployments, StatefulSets and DaemonSets, splits them into the application "
            "and the audit writer (`application_workloads`, `audit_writer_workloads`, or by "
            "name and labels), and for every audit writer compares the credentials its pods "
            "take from Secrets (env secretKeyRef, envFrom, secret and projected volumes) with "
            "every application workload's: the same Secret fails outright; for different "
            "Secrets it reads them (get secrets, by name only) and compares credential values "
            "as keyed hashes, so equal passwords under different names fail too. Only which "
            "pairs matched leaves the check; values and digests are discarded. Secrets named "
            "like certificates (tls, cert, ca) are not fetched and CA and TLS keys are not "
            "compared."),
        remediation=(
            "Give the audit writer its own database role and a Secret the application's pods "
            "do not mount, with a password generated separately (rotate the application's "
            "and the audit writer's independently); keep the audit writer in a namespace of "
            "its own."),
        operations=(
            *_WORKLOAD_OPERATIONS,
            _k8s(NEEDS_SECRETS, "read only the Secrets the workloads reference, by name, to "
                 "compare credential values as keyed hashes; values never leave the check"),
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> SharedSecretObservation:
        """List workloads, then compare every audit writer with the applications."""
        cluster = _cluster(target)
        client = ctx.clients.kubernetes(cluster)
        workloads = list_workloads(ctx, cluster, client)
        if isinstance(workloads, Unknown):
            return SharedSecretObservation(workloads)
        applications, writers = split_workloads(workloads, cluster)
        reader = _SecretReader(ctx, client)
        discovered = not _patterns(cluster, "audit_writer_workloads")
        return SharedSecretObservation(
            tuple(compare_writer(w, applications, reader) for w in writers), len(applications),
            discovered)

    def evaluate(self, obs: SharedSecretObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per audit writer; none found is UNVERIFIED."""
        f = self.findings(target)
        if isinstance(obs.comparisons, Unknown):
            return [f.unverified("workloads", obs.comparisons, "the cluster's workloads")]
        if not obs.comparisons:
            return [f.unverified("audit-writers", Unknown(
                UnknownReason.NOT_VISIBLE, "no audit writer workload was found",
                "`audit_writer_workloads` in this cluster of the inventory"),
                "the audit writer's workloads")]
        if obs.applications == 0:
            return [f.unverified("applications", Unknown(
                UnknownReason.NOT_VISIBLE, "no application workload was found, so there is "
                "nothing to compare with", "`application_workloads` in this cluster of the "
                "inventory"), "the application's workloads")]
        return [_judge_shared(f, obs, c) for c in obs.comparisons]


def _judge_shared(f: FindingBuilder[Any], obs: SharedSecretObservation,
                  comparison: WriterComparison) -> Finding:
    resource = comparison.writer
    evidence: dict[str, EvidenceValue] = {
        "applications": obs.applications, "discovered": obs.discovered,
        "shared_refs": comparison.shared_refs, "equal_values": comparison.equal_values,
        "compared_pairs": comparison.compared, "trail": f"k8s:{resource}",
        "trail_kind": "kubernetes_workload"}
    if comparison.shared_refs or comparison.equal_values:
        evidence["trail_shares_app_credentials"] = True
        what = []
        if comparison.shared_refs:
            what.append(f"{len(comparison.shared_refs)} reference(s) to the same Secret")
        if comparison.equal_values:
            what.append(f"{len(comparison.equal_values)} equal credential value(s)")
        return f.failed(resource, f"The audit writer {resource} shares credentials with the "
                        f"application: {' and '.join(what)}.", evidence=evidence)
    if comparison.unreadable is not None:
        evidence["trail_shares_app_credentials"] = "unknown"
        unknown = comparison.unreadable
        return f.make(Status.UNVERIFIED, resource, "Could not observe whether the audit "
                      f"writer's credentials equal the application's: {unknown.detail}",
                      evidence=evidence, needs=unknown.needs, unknown_reason=unknown.reason)
    evidence["trail_shares_app_credentials"] = False
    return f.passed(resource, f"The audit writer {resource} shares no Secret and no credential "
                    "value with the application's workloads.", evidence=evidence)


# --- kubernetes.audit.app_secret_access --------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One RBAC policy rule, reduced to what matters for Secrets."""

    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    resource_names: tuple[str, ...]
    verbs: tuple[str, ...]

    def secret_verbs(self, name: str) -> tuple[str, ...]:
        """The verbs this rule grants on the Secret `name`."""
        if not ({"", "*"} & set(self.api_groups)) or not ({"secrets", "*"} & set(self.resources)):
            return ()
        if self.resource_names and name not in self.resource_names:
            return ()
        if "*" in self.verbs:
            return ("*",)
        return tuple(v for v in SECRET_VERBS if v in self.verbs)


@dataclass(frozen=True)
class Binding:
    """A RoleBinding (namespace set) or ClusterRoleBinding (namespace None)."""

    name: str
    namespace: str | None
    role_kind: str
    role_name: str
    subjects: tuple[tuple[str, str, str | None], ...]
    """(kind, name, namespace) of each subject."""


@dataclass(frozen=True)
class Rbac:
    """The cluster's roles (keyed by (namespace or None, name)) and bindings."""

    roles: Mapping[tuple[str | None, str], tuple[Rule, ...]]
    bindings: tuple[Binding, ...]


def _rules(raw: Mapping[str, Any]) -> tuple[Rule, ...]:
    return tuple(Rule(tuple(r.get("apiGroups") or ()), tuple(r.get("resources") or ()),
                      tuple(r.get("resourceNames") or ()), tuple(r.get("verbs") or ()))
                 for r in raw.get("rules") or ())


def _binding(raw: Mapping[str, Any], cluster_wide: bool) -> Binding:
    meta, ref = raw.get("metadata") or {}, raw.get("roleRef") or {}
    namespace = None if cluster_wide else str(meta.get("namespace"))
    subjects = tuple((str(s.get("kind")), str(s.get("name")),
                      s.get("namespace") or (namespace if s.get("kind") == "ServiceAccount"
                                             else None))
                     for s in raw.get("subjects") or ())
    return Binding(str(meta.get("name")), namespace, str(ref.get("kind")),
                   str(ref.get("name")), subjects)


_RBAC_LISTS = (("list_cluster_role", "clusterroles"),
               ("list_role_for_all_namespaces", "roles"),
               ("list_cluster_role_binding", "clusterrolebindings"),
               ("list_role_binding_for_all_namespaces", "rolebindings"))


def read_rbac(ctx: CheckContext, cluster: KubernetesClusterConfig, client: Any) -> Fact[Rbac]:
    """Every Role, ClusterRole and binding of the cluster, read once per scan."""
    api = RbacAuthorizationV1Api(client)
    raw: dict[str, list[dict[str, Any]]] = {}
    for method, resource in _RBAC_LISTS:
        items = _listed(ctx, cluster, api, method, f"list rbac.authorization.k8s.io/{resource}")
        if isinstance(items, Unknown):
            return items
        raw[resource] = [client.sanitize_for_serialization(i) for i in items]
    roles: dict[tuple[str | None, str], tuple[Rule, ...]] = {}
    for item in raw["clusterroles"]:
        roles[(None, str(item["metadata"]["name"]))] = _rules(item)
    for item in raw["roles"]:
        meta = item["metadata"]
        roles[(str(meta.get("namespace")), str(meta["name"]))] = _rules(item)
    bindings = tuple(_binding(b, True) for b in raw["clusterrolebindings"]) + tuple(
        _binding(b, False) for b in raw["rolebindings"])
    return Rbac(roles, bindings)


def binds(binding: Binding, namespace: str, account: str) -> bool:
    """Whether the binding's subjects include the ServiceAccount `namespace/account`."""
    groups = {"system:serviceaccounts", f"system:serviceaccounts:{namespace}",
              "system:authenticated"}
    for kind, name, subject_ns in binding.subjects:
        if kind == "ServiceAccount" and name == account and subject_ns == namespace:
            return True
        if kind == "Group" and name in groups:
            return True
        if kind == "User" and name == f"system:serviceaccount:{namespace}:{account}":
            return True
    return False


@dataclass(frozen=True)
class Grant:
    """An application ServiceAccount's verbs on an audit Secret, and the binding behind them."""

    service_account: str
    verbs: tuple[str, ...]
    binding: str


def secret_grants(rbac: Rbac, secret_ns: str, secret: str,
                  accounts: Iterable[tuple[str, str]]) -> tuple[Grant, ...]:
    """Every (ServiceAccount, verbs, binding) that reaches the Secret `secret_ns/secret`."""
    grants = []
    for binding in rbac.bindings:
        if binding.namespace not in (None, secret_ns):
            continue
        scope = None if binding.role_kind == "ClusterRole" else binding.namespace
        rules = rbac.roles.get((scope, binding.role_name), ())
        verbs = tuple(dict.fromkeys(v for r in rules for v in r.secret_verbs(secret)))
        if not verbs:
            continue
        where = (f"ClusterRoleBinding {binding.name}" if binding.namespace is None
                 else f"RoleBinding {binding.namespace}/{binding.name}")
        for namespace, account in accounts:
            if binds(binding, namespace, account):
                grants.append(Grant(f"{namespace}/{account}", verbs,
                                    f"{where} ({binding.role_kind} {binding.role_name})"))
    return tuple(grants)


@dataclass(frozen=True)
class SecretAccess:
    """One audit store Secret and the application ServiceAccounts that reach it."""

    secret: str
    """`namespace/name`."""
    grants: tuple[Grant, ...]


@dataclass(frozen=True)
class SecretAccessObservation:
    """The application's ServiceAccounts and every audit Secret's grants, or why not known."""

    accounts: Fact[tuple[str, ...]]
    secrets: Fact[tuple[SecretAccess, ...]]
    configured: bool = False


def audit_secret_names(cluster: KubernetesClusterConfig,
                       writers: Sequence[Workload]) -> tuple[tuple[str, str], ...]:
    """The configured `audit_secrets`, else every Secret an audit writer references."""
    configured = [p.split("/", 1) for p in _patterns(cluster, "audit_secrets") if "/" in p]
    if configured:
        return tuple(sorted({(ns, name) for ns, name in configured}))
    return tuple(sorted({(u.namespace, u.secret) for w in writers for u in w.secrets}))


class AppCanAccessAuditSecret(Check[SecretAccessObservation]):
    """
    No ServiceAccount the application runs as may read or change the audit store's Secret.
    """

    meta = CheckMeta(
        id="kubernetes.audit.app_secret_access",
        title="The application's ServiceAccounts cannot read or change the audit store's Secret",
        family=Family.AUDIT,
        standard=Standard.AUDIT_CONTROLS,
        citations=_CITATIONS,
        severity=Severity.HIGH,
        target_kind=TargetKind.KUBERNETES,
        description=(
            "Finds the ServiceAccounts the application's workloads run as and the audit "
            "store's Secrets (`audit_secrets`, or every Secret the audit writer references), "
            "reads the cluster's Roles, ClusterRoles, RoleBindings and ClusterRoleBindings, and "
            "reports every binding (to the ServiceAccount, its namespace's service-account "
            "group, all service accounts or all authenticated users) that grants get, list, "
            "watch, update, patch or delete on such a Secret. No Secret is read. Not evaluated: "
            "creating pods or exec in the audit namespace (which also reaches its Secrets), "
            "impersonation, and admission webhooks."),
        remediation=(
            "Remove every Role or ClusterRole binding that gives the application's "
            "ServiceAccounts access to Secrets in the audit writer's namespace; bind the audit "
            "writer's Secret only to its own ServiceAccount, by resourceNames, with get."),
        operations=(
            *_WORKLOAD_OPERATIONS,
            *(_k8s(f"list rbac.authorization.k8s.io/{resource}",
                   "who may read or change the audit store's Secret")
              for _method, resource in _RBAC_LISTS),
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> SecretAccessObservation:
        """List workloads and RBAC, then resolve each audit Secret's grants."""
        cluster = _cluster(target)
        client = ctx.clients.kubernetes(cluster)
        workloads = list_workloads(ctx, cluster, client)
        if isinstance(workloads, Unknown):
            return SecretAccessObservation(workloads, workloads)
        applications, writers = split_workloads(workloads, cluster)
        accounts = tuple(sorted({(w.namespace, w.service_account) for w in applications}))
        names = [f"{ns}/{sa}" for ns, sa in accounts]
        rbac = read_rbac(ctx, cluster, client)
        if isinstance(rbac, Unknown):
            return SecretAccessObservation(tuple(names), rbac)
        secrets = tuple(SecretAccess(f"{ns}/{name}", secret_grants(rbac, ns, name, accounts))
                        for ns, name in audit_secret_names(cluster, writers))
        return SecretAccessObservation(tuple(names), secrets,
                                       bool(_patterns(cluster, "audit_secrets")))

    def evaluate(self, obs: SecretAccessObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per audit Secret."""
        f = self.findings(target)
        for fact, what in ((obs.accounts, "the cluster's workloads"),
                           (obs.secrets, "the cluster's RBAC")):
            if isinstance(fact, Unknown):
                return [f.unverified("rbac", fact, what)]
        assert isinstance(obs.secrets, tuple) and isinstance(obs.accounts, tuple)
        if not obs.secrets:
            return [f.unverified("audit-secrets", Unknown(
                UnknownReason.NOT_VISIBLE, "no audit store Secret was found",
                "`audit_secrets` in this cluster of the inventory"), "the audit store's Secrets")]
        if not obs.accounts:
            return [f.unverified("applications", Unknown(
                UnknownReason.NOT_VISIBLE, "no application workload was found, so there is "
                "nothing to compare with", "`application_workloads` in this cluster of the "
                "inventory"), "the application's ServiceAccounts")]
        return [_judge_access(f, obs.accounts, access) for access in obs.secrets]


def _judge_access(f: FindingBuilder[Any], accounts: tuple[str, ...],
                  access: SecretAccess) -> Finding:
    modifiers = tuple(dict.fromkeys(g.service_account for g in access.grants
                                    if WRITE_VERBS & set(g.verbs)))
    grants = tuple(f"{g.service_account}: {', '.join(g.verbs)} via {g.binding}"
                   for g in access.grants)
    evidence: dict[str, EvidenceValue] = {
        "service_accounts": accounts, "grants": grants,
        "trail": f"k8s:secret/{access.secret}", "trail_kind": "kubernetes_secret",
        "trail_app_can_modify": bool(modifiers), "trail_modifiers": modifiers}
    if grants:
        return f.failed(f"secret/{access.secret}", f"The application's ServiceAccounts may "
                        f"reach the audit store's Secret {access.secret}: {'; '.join(grants)}.",
                        evidence=evidence)
    return f.passed(f"secret/{access.secret}", f"None of the application's {len(accounts)} "
                    f"ServiceAccount(s) may read or change the audit store's Secret "
                    f"{access.secret}.", evidence=evidence)
