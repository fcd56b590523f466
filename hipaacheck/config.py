"""
The inventory (`hipaacheck.yaml`): what to scan and the policy to judge it by.

Validation is strict: unknown keys, wrong types and unknown check ids refuse the run with an
error that names the file, line and key path, never the offending value. Secrets are never
written in the file: `${ENV_VAR}` references are expanded at load time into `Secret` values
that redact themselves, and libpq, the AWS credential chain and kubeconfig files supply the rest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from hipaacheck.check import Policy
from hipaacheck.errors import ConfigError
from hipaacheck.model import Target, TargetKind
from hipaacheck.redact import Secret

SCHEMA_VERSION = 1
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


SecretField = Annotated[Secret, Field(json_schema_extra={"type": "string", "format": "secret"})]


_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):(\d{1,5})$")


def _address(value: str) -> str:
    """A `host:port` (IPv6 in brackets) with a port from 1 to 65535, the host lower-cased."""
    match = _ADDRESS.match(value)
    if match is None or not 1 <= int(match.group(2)) <= 65535:
        raise ValueError("must be host:port with a port from 1 to 65535 ([v6]:port for IPv6)")
    return value.lower()


Address = Annotated[str, AfterValidator(_address)]


class TlsEndpointConfig(_Strict):
    """One TLS endpoint to probe."""

    name: str
    host: str
    port: int = Field(ge=1, le=65535)
    zone: Literal["internal", "external"] = "external"
    server_name: str | None = None
    """SNI and the name the certificate must match; defaults to `host`."""
    starttls: Literal["postgres", "smtp", "imap", "pop3", "ftp", "ldap", "xmpp"] | None = None
    ca_bundle: Path | None = None
    """A PEM bundle that internal endpoints' chains must verify against."""
    expect_tls: bool = True
    attack_probes: bool = False
    """Opt in to attack-shaped probes (Heartbleed, ROBOT, CCS) for this endpoint."""
    connect_to: Address | None = None
    """`address:port` to connect to instead of `host:port`, like curl's `--connect-to`: SNI,
    the certificate match and the findings keep `host` (split DNS, a tunnel, a port-forward)."""




class ProbeEndpointsConfig(_Strict):
    """
    Opt-in live TLS probing of the endpoints a source's checks discover (load balancer
    listeners, Ingress hosts, database addresses). `true` means these defaults.
    """

    include: list[str] = ["*"]
    """Glob patterns of the hosts to probe."""
    exclude: list[str] = []
    """Glob patterns of hosts never to probe; they win over `include`."""
    ca_bundle: Path | None = None
    """The PEM bundle that internal endpoints' chains must verify against."""
    zone: Literal["internal", "external"] | None = None
    """Judge every endpoint of the source as this zone, whatever the control plane says (an
    on-premises cluster whose load balancers are private); by default each endpoint's own."""
    connect_to: dict[Address, Address] = {}
    """`host:port` to `address:port`, like curl's `--connect-to`: the probe connects to the
    address and still sends and verifies the discovered host name (split DNS, a tunnel)."""
    max_endpoints: int = Field(default=256, ge=1)
    """At most this many endpoints of the source are probed; the rest are listed."""


def _probe_opt_in(value: Any) -> Any:
    """`probe_endpoints: true` is the defaults, `false` is off."""
    if value is True:
        return {}
    return None if value is False else value


ProbeEndpoints = Annotated[ProbeEndpointsConfig | None, BeforeValidator(_probe_opt_in)]


class TlsConfig(_Strict):
    """The `tls` section."""

    endpoints: list[TlsEndpointConfig] = []


class AwsAccountConfig(_Strict):
    """One AWS account: credentials from a profile or the default chain, never from here."""

    name: str
    profile: str | None = None
    regions: list[str] = Field(min_length=1)
    """Region names, or `[all]` for every region enabled in the account."""
    endpoint_url: str | None = None
    """A local AWS-compatible endpoint (moto, LocalStack); also honoured from AWS_ENDPOINT_URL."""
    role_arn: str | None = None
    external_id: SecretField | None = None
    application_role_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    """The application's IAM role, judged for write access to the audit stores."""
    audit_buckets: list[str] = []
    """Glob patterns of S3 buckets that hold audit records (CloudTrail's are found)."""
    audit_log_groups: list[str] = []
    """Glob patterns of CloudWatch log groups that hold audit records."""
    phi_resources: list[str] = ["*"]
    """Glob patterns of the stores (bucket names, DB identifiers, ...) that hold PHI."""
    backup_copy_regions: list[str] = []
    """Regions where copies of PHI backups must exist."""
    probe_endpoints: ProbeEndpoints = None
    """Probe the TLS of the endpoints found in this account (off unless set)."""
    use_aws_config: bool = False
    """Opt-in: read S3 bucket policies and lifecycle rules from AWS Config's recorded items,
    100 buckets a call, where a continuous recorder that covers S3 buckets is recording and
    last succeeded, for the items captured since it last started. Config's items are taken as
    complete: a policy or lifecycle rule that Config did not record (its role denied by a
    bucket policy, recording lag) counts as none. Turn it on only where the recorder's role
    can read every bucket; off (the default), every bucket is read directly."""


class AwsConfig(_Strict):
    """The `aws` section."""

    accounts: list[AwsAccountConfig] = []


class KubernetesClusterConfig(_Strict):
    """One Kubernetes cluster, reached through a kubeconfig context or in-cluster credentials."""

    name: str
    kubeconfig: Path | None = None
    context: str | None = None
    in_cluster: bool = False
    namespaces: list[str] = []
    """Namespaces holding PHI workloads; empty means every namespace."""
    application_workloads: list[str] = []
    """Globs over `namespace/Kind/name` of the application's workloads."""
    audit_writer_workloads: list[str] = []
    """Globs over `namespace/Kind/name` of the workloads that write the audit trail."""
    audit_secrets: list[str] = []
    """`namespace/name` of the Secrets that hold the audit store's credentials."""
    probe_endpoints: ProbeEndpoints = None
    """Probe the TLS of the endpoints found in this cluster (off unless set)."""


class KubernetesConfig(_Strict):
    """The `kubernetes` section."""

    clusters: list[KubernetesClusterConfig] = []


class PostgresConnection(_Strict):
    """
    A libpq connection. Any of `conninfo`, `service` or the PG* environment supply the
    parameters; a password comes from `${ENV}` in the conninfo, PGPASSWORD or the passfile.
    """

    conninfo: SecretField = Field(default_factory=lambda: Secret(""))
    service: str | None = None
    passfile: Path | None = None

    def libpq_conninfo(self) -> str:
        """The conninfo string to hand to libpq (a secret: never log it)."""
        parts = [self.conninfo.reveal()]
        if self.service:
            parts.append(f"service={self.service}")
        if self.passfile:
            parts.append(f"passfile={self.passfile}")
        return " ".join(p for p in parts if p)


class EncryptionAttestation(_Strict):
    """Someone's statement that a server's storage is encrypted at rest, and where the proof is."""

    by: str = Field(min_length=1)
    date: dt.date
    evidence: str = Field(min_length=1)
    method: str | None = None
    """For example `LUKS2 aes-xts-plain64` or `EBS encrypted volumes`."""


class PostgresConfig(_Strict):
    """
    One application database and the audit store that records access to it.
    """

    name: str
    application: PostgresConnection
    audit: PostgresConnection | None = None
    audit_tables: list[str] = []
    """Qualified names (`audit.access_log`) of the relations that hold the audit trail."""
    audit_reader: PostgresConnection | None = None
    """A connection with SELECT on the audit tables; defaults to `audit`, then `application`."""
    audit_columns: dict[Literal["actor", "time", "action", "record"], str] = {}
    """Column names of the audit tables where the built-in guesses are wrong."""
    tenant_columns: list[str] = []
    """Tenant column names; empty means the built-in tenant_id, org_id, practice_id, ..."""
    encryption_attestation: EncryptionAttestation | None = None
    """Disk encryption is invisible over SQL; an attestation is reported as attested."""
    probe_endpoints: ProbeEndpoints = None
    """Probe the server's TLS (STARTTLS) at the address the connection reaches (off unless set)."""


_MiB = 1024 * 1024


class LogSinkConfig(_Strict):
    """
    A set of local log files: paths, globs or directories (`kind: files`, the default).

    Files share `max_bytes_per_sink`, the most recently modified first; a file larger than
    its share is sampled (head, tail and random offsets) rather than read whole.
    """

    kind: Literal["files"] = "files"
    name: str
    paths: list[str] = Field(min_length=1)
    max_bytes_per_file: int = Field(default=256 * _MiB, ge=1)
    max_bytes_per_sink: int = Field(default=4096 * _MiB, ge=1)


class CloudWatchSinkConfig(_Strict):
    """
    CloudWatch Logs groups, named or matched by prefix, in every region of `account`.

    `account` is written like an `aws.accounts` entry (a YAML alias of one works); the scan
    reads through its own read-only session for this sink. Recent events are sampled over
    `window_hours`, and, where the group has a data protection policy, the same span before
    the policy took effect, within the event and byte budgets.
    """

    kind: Literal["cloudwatch"]
    name: str
    account: AwsAccountConfig
    log_groups: list[str] = []
    log_group_prefixes: list[str] = []
    window_hours: float = Field(default=24.0, gt=0, le=24 * 455)
    max_groups: int = Field(default=200, ge=1)
    max_events_per_group: int = Field(default=20_000, ge=1)
    max_bytes_per_group: int = Field(default=32 * _MiB, ge=1)
    max_bytes_per_sink: int = Field(default=512 * _MiB, ge=1)
    sample_before_policy: bool = True

    @model_validator(mode="after")
    def _names_something(self) -> CloudWatchSinkConfig:
        if not self.log_groups and not self.log_group_prefixes:
            raise ValueError("name at least one log group or log group prefix")
        return self


class S3LogSinkConfig(_Strict):
    """
    Log objects in an S3 bucket under `prefixes`: the most recent objects (at most
    `max_age_days` old), read with ranged GETs within the per-object and per-sink budgets.
    """

    kind: Literal["s3"]
    name: str
    account: AwsAccountConfig
    bucket: str = Field(min_length=3, max_length=63)
    prefixes: list[str] = Field(default_factory=lambda: [""], min_length=1)
    max_age_days: float = Field(default=7.0, gt=0)
    max_objects: int = Field(default=200, ge=1)
    max_bytes_per_object: int = Field(default=16 * _MiB, ge=1)
    max_bytes_per_sink: int = Field(default=512 * _MiB, ge=1)


class PodLogSinkConfig(_Strict):
    """
    Kubernetes pod logs: every container (init and ephemeral ones too) of the pods in
    `namespaces` matching any of `label_selectors`, and the previous container of each one
    that restarted. The API server trims each log to `tail_lines` and `limit_bytes`.

    Empty `namespaces` means the cluster entry's own `namespaces`, or every namespace when
    that is empty too; empty `label_selectors` means every pod.
    """

    kind: Literal["pods"]
    name: str
    cluster: KubernetesClusterConfig
    namespaces: list[str] = []
    label_selectors: list[str] = []
    previous: bool = True
    tail_lines: int = Field(default=5000, ge=1)
    limit_bytes: int = Field(default=4 * _MiB, ge=1)
    max_pods: int = Field(default=500, ge=1)
    max_bytes_per_sink: int = Field(default=512 * _MiB, ge=1)


SINK_KINDS = ("files", "cloudwatch", "s3", "pods")


def _sink_kind(value: Any) -> str | None:
    """The tag of a sink entry: its `kind`, `files` when it names none."""
    kind = value.get("kind", "files") if isinstance(value, dict) else getattr(value, "kind", None)
    # The bracket keeps the tag out of error paths (see `_walk_errors`): `logs.sinks[0].paths`.
    return f"kind[{kind}]" if kind in SINK_KINDS else None


AnyLogSink = Annotated[
    Annotated[LogSinkConfig, Tag("kind[files]")]
    | Annotated[CloudWatchSinkConfig, Tag("kind[cloudwatch]")]
    | Annotated[S3LogSinkConfig, Tag("kind[s3]")]
    | Annotated[PodLogSinkConfig, Tag("kind[pods]")],
    Discriminator(_sink_kind, custom_error_type="sink_kind",
                  custom_error_message="kind must be one of: " + ", ".join(SINK_KINDS)),
]
"""One entry of `logs.sinks`, told apart by its `kind`."""


class LogsConfig(_Strict):
    """The `logs` section: sinks of every kind, each a target of its own (`logs:NAME`)."""

    sinks: list[AnyLogSink] = []


class PolicyConfig(_Strict):
    """The `policy` section: thresholds the checks judge against."""

    min_backup_retention_days: int = Field(default=7, ge=1)
    recommended_backup_retention_days: int = Field(default=35, ge=1)
    min_phi_retention_days: int | None = Field(default=None, ge=1)
    """Lifecycle rules must not delete PHI earlier than this; unset means no minimum."""
    min_audit_retention_days: int = Field(default=2192, ge=1)
    cert_expiry_warning_days: int = Field(default=30, ge=0)
    require_customer_managed_keys: bool = False

    def to_policy(self) -> Policy:
        """The policy object handed to checks."""
        return Policy(
            min_backup_retention_days=self.min_backup_retention_days,
            recommended_backup_retention_days=self.recommended_backup_retention_days,
            min_phi_retention_days=self.min_phi_retention_days,
            min_audit_retention_days=self.min_audit_retention_days,
            cert_expiry_warning_days=self.cert_expiry_warning_days,
            require_customer_managed_keys=self.require_customer_managed_keys)


class ChecksSelection(_Strict):
    """The `checks` section: which checks run by default."""

    only: list[str] = []
    skip: list[str] = []


class ScanSettings(_Strict):
    """The `scan` section: concurrency and deadlines."""

    workers: int = Field(default=8, ge=1, le=256)
    probe_timeout_seconds: float = Field(default=10.0, gt=0)
    check_deadline_seconds: float = Field(default=120.0, gt=0)


class Inventory(_Strict):
    """The whole `hipaacheck.yaml`."""

    version: Literal[1] = 1
    organization: str = "Unnamed organisation"
    tls: TlsConfig = TlsConfig()
    aws: AwsConfig = AwsConfig()
    kubernetes: KubernetesConfig = KubernetesConfig()
    postgres: list[PostgresConfig] = []
    logs: LogsConfig = LogsConfig()
    policy: PolicyConfig = PolicyConfig()
    checks: ChecksSelection = ChecksSelection()
    scan: ScanSettings = ScanSettings()

    @field_validator("postgres")
    @classmethod
    def _unique_pg_names(cls, value: list[PostgresConfig]) -> list[PostgresConfig]:
        names = [p.name for p in value]
        if len(names) != len(set(names)):
            raise ValueError("postgres entries need unique names")
        return value

    def targets(self) -> list[Target]:
        """Every target of the inventory, with stable ids."""
        targets = [Target(TargetKind.TLS_ENDPOINT, f"tls:{e.name}", e.name, e)
                   for e in self.tls.endpoints]
        targets += [Target(TargetKind.AWS, f"aws:{a.name}", a.name, a) for a in self.aws.accounts]
        targets += [Target(TargetKind.KUBERNETES, f"k8s:{c.name}", c.name, c)
                    for c in self.kubernetes.clusters]
        targets += [Target(TargetKind.POSTGRES, f"postgres:{p.name}", p.name, p)
                    for p in self.postgres]
        targets += [Target(TargetKind.LOG_SINK, f"logs:{s.name}", s.name, s)
                    for s in self.logs.sinks]
        ids = [t.id for t in targets]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ConfigError(f"duplicate target names: {', '.join(duplicates)}")
        return targets

    def fingerprint(self) -> str:
        """
        A SHA-256 over the inventory with every secret replaced by a marker: it changes when
        the scope changes, and reveals nothing.
        """
        dumped = self.model_dump(mode="json")
        blob = json.dumps(dumped, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()


def _expand_env(node: Any, path: tuple[str | int, ...], env: dict[str, str],
                source: str = "<config>") -> Any:
    if isinstance(node, dict):
        return {k: _expand_env(v, path + (k,), env, source) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand_env(v, path + (i,), env, source) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(f"{source}: {_dotted(path)}: environment variable {name} "
                                  "is not set")
            return env[name]
        return _ENV_REF.sub(sub, node)
    return node


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line_of(root: yaml.Node | None, path: tuple[str | int, ...]) -> int | None:
    """The 1-based line of the YAML node at `path`, or of its deepest existing ancestor."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    child = value if part != path[-1] else key
                    break
        elif (isinstance(node, yaml.SequenceNode) and isinstance(part, int)
              and part < len(node.value)):
            child = node.value[part]
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def _duplicate_keys(node: yaml.Node | None, path: tuple[str | int, ...] = ()
                    ) -> Iterator[tuple[int, tuple[str | int, ...]]]:
    """Every mapping key that appears twice, with its line: YAML would keep only the last."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                yield key.start_mark.line + 1, path + (name,)
            seen.add(name)
            yield from _duplicate_keys(value, path + (name,))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, path + (index,))


def _walk_errors(exc: ValidationError) -> Iterator[tuple[tuple[str | int, ...], str]]:
    for error in exc.errors(include_input=False, include_url=False):
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and "[" in p))
        yield loc, error["msg"]


def parse_inventory(text: str, source: str = "<config>",
                    env: dict[str, str] | None = None) -> Inventory:
    """
    Validate YAML text into an `Inventory`; raise `ConfigError` naming lines and key paths.
    """
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{source}{where}: not valid YAML") from None
    duplicates = [f"{source}:{line}: {_dotted(path)}: duplicate key"
                  for line, path in _duplicate_keys(root)]
    if duplicates:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(duplicates))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: the top level must be a mapping")
    data = _expand_env(data, (), dict(os.environ) if env is None else env, source)
    try:
        return Inventory.model_validate(data)
    except ValidationError as exc:
        lines = []
        for loc, msg in _walk_errors(exc):
            line = _line_of(root, loc)
            lines.append(f"{source}:{line}: {_dotted(loc)}: {msg}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


def load_inventory(path: Path, env: dict[str, str] | None = None) -> Inventory:
    """Read and validate the inventory file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration ({exc.strerror})") from None
    return parse_inventory(text, str(path), env)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the inventory file."""
    schema = Inventory.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hipaacheck inventory"
    return schema
