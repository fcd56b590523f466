"""
Copies of RDS and Aurora backups in a second region, where the inventory asks for them.

The check applies only to accounts whose `backup_copy_regions` names regions (see
`collector.AwsScope`); without it there is no requirement to judge. For every PHI DB instance
and cluster it looks, in each required region other than its own, for any copy of its data:

- a manual snapshot copied there (`DescribeDBSnapshots`, `DescribeDBClusterSnapshots`);
- automated backups replicated there (`DescribeDBInstanceAutomatedBackups`);
- a read replica there (the instance's own listing names it);
- an AWS Backup rule covering the database that copies recovery points to a vault there.

Each required region's listings are read once per scan and shared with the snapshot checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.aws.backup import (
    PLAN_OPERATIONS,
    SELECTION_OPERATIONS,
    RegionBackupContext,
    covering,
    region_context,
)
from hipaacheck.checks.aws.collector import (
    REGIONS_OPERATION,
    Scan,
    account_of,
    listing,
    scan_regions,
    scope_of,
)
from hipaacheck.checks.aws.rds import (
    DESCRIBE_CLUSTERS,
    DESCRIBE_INSTANCES,
    REGIONS_RESOURCE,
    db_clusters,
    db_instances,
)
from hipaacheck.checks.aws.stores import RDS_SNAPSHOTS, Store
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
)

DESCRIBE_AUTOMATED = "rds:DescribeDBInstanceAutomatedBackups"


@dataclass(frozen=True)
class RegionHoldings:
    """What one required region holds that may be a copy of another region's database."""

    region: str
    snapshots: Fact[tuple[Store, ...]]
    replicated: Fact[frozenset[str]]
    """ARNs of source instances whose automated backups are replicated into this region."""
    local: Fact[frozenset[str]]
    """Identifiers of the region's own instances and clusters."""


@dataclass(frozen=True)
class DatabaseCopies:
    """One PHI database and, per required region, the kinds of copy found there."""

    resource: str
    region: str
    kind: str
    found: Mapping[str, Fact[tuple[str, ...]]]


@dataclass(frozen=True)
class CopiesObservation:
    """The required regions, every PHI database, and the listings that could not be read."""

    required: tuple[str, ...]
    databases: tuple[DatabaseCopies, ...] = ()
    gaps: tuple[tuple[str, Unknown, str], ...] = ()


def _holdings(scan: Scan, region: str) -> RegionHoldings:
    snapshots = RDS_SNAPSHOTS.fetch(scan, region)
    automated = listing(scan, "rds", region, "describe_db_instance_automated_backups",
                        "DBInstanceAutomatedBackups", DESCRIBE_AUTOMATED)
    replicated: Fact[frozenset[str]] = automated if isinstance(automated, Unknown) else frozenset(
        str(b.get("DBInstanceArn")) for b in automated
        if b.get("Region") and b.get("Region") != region)
    instances, clusters = db_instances(scan, region), db_clusters(scan, region)
    local: Fact[frozenset[str]]
    if isinstance(instances, Unknown):
        local = instances
    elif isinstance(clusters, Unknown):
        local = clusters
    else:
        local = frozenset([i.identifier for i in instances] + [c.identifier for c in clusters])
    return RegionHoldings(region, snapshots, replicated, local)


def _copies_in(holdings: RegionHoldings, identifier: str, arn: str | None, source: str,
               replicas: Sequence[str], backup_copies: Sequence[str]) -> Fact[tuple[str, ...]]:
    """The kinds of copy of one database that a region holds, or why they are unknown."""
    kinds = []
    if any(f":{holdings.region}:" in r for r in replicas):
        kinds.append("read_replica")
    if holdings.region in backup_copies:
        kinds.append("aws_backup_copy")
    if not isinstance(holdings.replicated, Unknown) and arn in holdings.replicated:
        kinds.append("replicated_automated_backups")
    if not isinstance(holdings.snapshots, Unknown) and not isinstance(holdings.local, Unknown):
        local = identifier in holdings.local
        if any(s.detail("source") == identifier and (
                s.detail("source_region") == source or (not s.detail("source_region")
                                                        and not local))
               for s in holdings.snapshots):
            kinds.append("snapshot_copy")
    if kinds:
        return tuple(kinds)
    for fact in (holdings.snapshots, holdings.replicated, holdings.local):
        if isinstance(fact, Unknown):
            return fact
    return ()


def _database(region: str, identifier: str, arn: str | None, kind: str,
              replicas: Sequence[str], context: RegionBackupContext,
              holdings: Mapping[str, RegionHoldings], required: Sequence[str]) -> DatabaseCopies:
    covered, copies = covering(context, arn)
    backup_regions = [c.location.rsplit("@", 1)[-1] for c in copies if c.kind == "aws_backup_copy"]
    found: dict[str, Fact[tuple[str, ...]]] = {}
    for target in (r for r in required if r != region):
        kinds = _copies_in(holdings[target], identifier, arn, region, replicas, backup_regions)
        if kinds == () and isinstance(covered, Unknown):
            kinds = covered
        found[target] = kinds
    resource = arn or f"{region}/{identifier}"
    return DatabaseCopies(resource, region, kind, found)


def observe_copies(scan: Scan) -> CopiesObservation:
    """Every PHI database of the scanned regions and its copies in the required regions."""
    required = scan.scope.backup_copy_regions
    regions = scan_regions(scan)
    if isinstance(regions, Unknown):
        return CopiesObservation(required, (), ((REGIONS_RESOURCE, regions,
                                                 "the account's regions"),))
    holdings = {r: _holdings(scan, r) for r in required}
    databases: list[DatabaseCopies] = []
    gaps: list[tuple[str, Unknown, str]] = []
    for region in regions:
        context = region_context(scan, region)
        instances, clusters = db_instances(scan, region), db_clusters(scan, region)
        for fact, resource in ((instances, f"rds:{region}"), (clusters, f"rds:{region}:clusters")):
            if isinstance(fact, Unknown):
                gaps.append((resource, fact, f"the RDS databases in {region}"))
        for db in () if isinstance(instances, Unknown) else instances:
            if not db.cluster_id and scan.scope.holds_phi(db.identifier, db.arn):
                databases.append(_database(region, db.identifier, db.arn, "instance",
                                           db.read_replicas, context, holdings, required))
        for cluster in () if isinstance(clusters, Unknown) else clusters:
            if scan.scope.holds_phi(cluster.identifier, cluster.arn):
                databases.append(_database(region, cluster.identifier, cluster.arn,
                                           "cluster", (), context, holdings, required))
    return CopiesObservation(required, tuple(databases), tuple(gaps))


class CrossRegionBackup(Check[CopiesObservation]):
    """
    Every PHI database has a copy of its data in each second region the inventory requires.
    """

    meta = CheckMeta(
        id="aws.rds.cross_region_backup",
        title="RDS and Aurora backups are copied to the required regions",
        family=Family.BACKUP,
        standard=Standard.CONTINGENCY,
        citations=("164.308(a)(7)(ii)(A)", "164.308(a)(7)(ii)(B)", "164.310(d)(2)(iv)"),
        severity=Severity.MEDIUM,
        target_kind=TargetKind.AWS,
        description=(
            "Runs only for accounts whose inventory sets backup_copy_regions. For each PHI DB "
            "instance and cluster, looks in every required region for a copied snapshot, "
            "replicated automated backups, a read replica or an AWS Backup copy action. A "
            "required region without any copy fails."),
        remediation=(
            "Replicate automated backups to the region (StartDBInstanceAutomatedBackups"
            "Replication), copy snapshots there on a schedule, or add a copy action to the "
            "region in the AWS Backup rule that covers the database."),
        operations=(
            Operation(System.AWS, DESCRIBE_INSTANCES, "list DB instances per region"),
            Operation(System.AWS, DESCRIBE_CLUSTERS, "list DB clusters per region"),
            *RDS_SNAPSHOTS.operations,
            Operation(System.AWS, DESCRIBE_AUTOMATED,
                      "find automated backups replicated into the required regions"),
            *PLAN_OPERATIONS, *SELECTION_OPERATIONS, REGIONS_OPERATION,
        ),
    )

    def applies_to(self, target: Target) -> bool:
        """Only AWS accounts whose inventory names regions for backup copies."""
        return (target.kind == self.meta.target_kind
                and bool(scope_of(account_of(target)).backup_copy_regions))

    def collect(self, ctx: CheckContext, target: Target) -> CopiesObservation:
        """Read each required region's holdings and every PHI database's copies."""
        return observe_copies(Scan.of(ctx, target))

    def evaluate(self, obs: CopiesObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per PHI database, and one per listing that could not be read."""
        make = self.findings(target)
        if not obs.required:
            return [make.passed("rds:databases", "The inventory requires no backup copies in "
                                "another region.", evidence={"required_regions": ()})]
        findings = [make.unverified(resource, unknown, what) for resource, unknown, what
                    in obs.gaps]
        findings += [_judge(make, db, obs.required) for db in obs.databases]
        if not findings:
            findings.append(make.passed("rds:databases", "No PHI databases in the scanned "
                                        "regions.", evidence={"database_count": 0}))
        return findings


def _judge(make: FindingBuilder[CopiesObservation], db: DatabaseCopies,
           required: Sequence[str]) -> Finding:
    held = {r: k for r, k in db.found.items() if not isinstance(k, Unknown) and k}
    evidence: dict[str, EvidenceValue] = {
        "region": db.region, "database_kind": db.kind, "required_regions": tuple(required),
        "copy_regions": tuple(sorted(held)),
        "copy_kinds": tuple(sorted({kind for kinds in held.values() for kind in kinds}))}
    if not db.found:
        return make.passed(db.resource, "The database lives in the only required region.",
                           evidence=evidence)
    unknown = next((k for k in db.found.values() if isinstance(k, Unknown)), None)
    missing = sorted(r for r, k in db.found.items() if not isinstance(k, Unknown) and not k)
    if missing:
        return make.failed(db.resource, "No copy of the database's backups exists in "
                           + ", ".join(missing) + ".", evidence=evidence)
    if unknown is not None:
        return make.make(Status.UNVERIFIED, db.resource, "Could not observe the database's "
                         f"copies in every required region: {unknown.detail}",
                         evidence=evidence, needs=unknown.needs,
                         unknown_reason=unknown.reason)
    return make.passed(db.resource, "Copies of the database's backups exist in "
                       + ", ".join(sorted(held)) + ".", evidence=evidence)
