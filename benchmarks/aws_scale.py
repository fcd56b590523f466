"""
Scale benchmark of the AWS encryption-at-rest and backup-retention checks.

Starts a moto server in a child process on 127.0.0.1, seeds one account across four regions
with a continuous AWS Config recorder in every region, started first, then 2,000 buckets, 300
RDS instances, 200 manual DB snapshots (moto adds an automated one per instance), 500 EBS
volumes and 300 log groups (times `--scale`). Then it runs every check of both families
through hipaacheck's runner in this process twice, each scan with a fresh memo: first with
`use_aws_config: true` (bucket policies and lifecycle rules from Config's recorded items, 100
buckets per call), then with the inventory's default (off: every bucket read directly). For
each it prints:

- wall time of the scan, and peak memory (RSS growth of this process, which holds no moto
  state, so only the first scan's figure means anything; with `--tracemalloc`, the peak of
  Python allocations, for both);
- API calls per resource, per service and overall, and per bucket for the two families
  (`bucket_calls_per_bucket`: S3 and Config calls together);
- whether any resource was fetched twice (same service, region, operation and subject, first
  pages only; a batch call counts once for each bucket it asked for);

and whether the two scans gave every finding the same status.

Two things about the stand-in. The recorder is started before the buckets are created because
moto captures a bucket's item at the bucket's creation, and hipaacheck uses only items captured
since the recorder's last start. And moto's recorder status never gets past `lastStatus:
PENDING` (it models no recording or delivery, and has no DeliverConfigSnapshot), which
hipaacheck does not trust; AWS says SUCCESS once the recorder has recorded, so the child process
makes moto's recorders report SUCCESS when they start, and changes nothing else. moto's items
also report every noncurrent-version expiry as -1 (none): the Config scan's evidence shows the
90-day noncurrent rules of every fifth bucket as none, and their statuses still agree because
90 days clears the backup minimum.

Run from the repository root:  .venv/bin/python benchmarks/aws_scale.py [--scale 0.5]
`--phi-buckets '*-phi-*'` narrows the PHI scope to some buckets, as an inventory would.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.aws import (
    backup,
    encryption,
    kms,
    log_retention,
    rds,
    s3,
    s3_retention,
)
from hipaacheck.clients import Clients
from hipaacheck.config import AwsAccountConfig
from hipaacheck.lab.aws import LabCredentials, create_isolated_account, seed_config_recorder
from hipaacheck.model import Family, Finding, Target, TargetKind
from hipaacheck.registry import Registry
from hipaacheck.runner import Runner, plan

REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1")
COUNTS = {"buckets": 2000, "db_instances": 300, "db_snapshots": 200, "volumes": 500,
          "log_groups": 300}
SEED_THREADS = 16
OTHER_PHI_STORES = ("arn:aws:rds:*", "arn:aws:dynamodb:*", "arn:aws:elasticfilesystem:*",
                    "vol-*", "arn:aws:logs:*", "arn:aws:backup:*")
"""Every store but buckets stays in the PHI scope, whatever `--phi-buckets` says."""
_SERVER = """
import os, sys, time
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
import logging
logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
from moto.config.models import ConfigRecorderStatus
from moto.server import ThreadedMotoServer
# moto's status stays PENDING; AWS says SUCCESS once a recorder has recorded (see above).
_start = ConfigRecorderStatus.start
def _start_as_aws_after_recording(self):
    _start(self)
    self.last_status = "SUCCESS"
ConfigRecorderStatus.start = _start_as_aws_after_recording
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


class BenchAccount(AwsAccountConfig):
    """The account, with the PHI-scope knob that config.py does not have yet."""

    phi_resources: list[str] = Field(default_factory=lambda: ["*"])


def family_checks() -> list[Check[Any]]:
    """Every check of the encryption and backup families that the AWS collector serves."""
    classes: list[type[Check[Any]]] = [
        s3.DefaultEncryption, rds.StorageEncrypted, rds.BackupRetention, rds.DeletionProtection,
        *encryption.TABLE_CHECKS, encryption.EbsEncryptionByDefault, kms.KmsKeyState,
        kms.KmsKeyRotation, backup.DynamoDbPitr, backup.BackupPlanRules,
        backup.BackupVaultLock, backup.BackupCoverage, s3_retention.S3Versioning,
        s3_retention.S3LifecycleRetention, log_retention.AuditLogRetention]
    checks = [cls() for cls in classes]
    assert {c.meta.family for c in checks} == {Family.ENCRYPTION, Family.BACKUP}
    return checks


def start_server() -> tuple[subprocess.Popen[str], str]:
    """A moto server in a child process; its URL."""
    # moto turns its naive UTC clock into recorder start times with time.mktime (local time):
    # run it in UTC, or off UTC every recorder would seem to start after its items' capture.
    child = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "TZ": "UTC"})
    assert child.stdout is not None
    port = int(child.stdout.readline())
    return child, f"http://127.0.0.1:{port}"


def fan(work: Callable[[Any], None], items: Iterable[Any]) -> None:
    """`work` over `items` on the seeding pool, surfacing the first failure."""
    with ThreadPoolExecutor(SEED_THREADS) as pool:
        for _ in pool.map(work, list(items)):
            pass


def seed_buckets(creds: LabCredentials, url: str, count: int,
                 keys: dict[str, str]) -> None:
    """Buckets spread over the regions: half SSE-KMS with a customer key, 30% SSE-S3, 10%
    AWS-managed KMS, 10% none; versioning on every other one, a lifecycle on every fifth."""
    clients = {r: creds.client("s3", r, url) for r in REGIONS}

    def make(index: int) -> None:
        region = REGIONS[index % len(REGIONS)]
        client = clients[region]
        role = "phi" if index % 5 < 2 else "web"
        name = f"bench-{creds.account_id}-{role}-{index:05d}"
        where = {} if region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": region}}
        client.create_bucket(Bucket=name, **where)
        share = index % 10
        if share < 5:
            rule = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": keys[region]}
        elif share < 8:
            rule = {"SSEAlgorithm": "AES256"}
        elif share < 9:
            rule = {"SSEAlgorithm": "aws:kms"}
        else:
            client.delete_bucket_encryption(Bucket=name)
            rule = {}
        if rule:
            client.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": rule}]})
        if index % 2 == 0:
            client.put_bucket_versioning(Bucket=name,
                                         VersioningConfiguration={"Status": "Enabled"})
        if index % 5 == 0:
            client.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={
                "Rules": [{"ID": "old", "Status": "Enabled", "Filter": {"Prefix": ""},
                           "NoncurrentVersionExpiration": {"NoncurrentDays": 90}}]})

    fan(make, range(count))


def seed_config(creds: LabCredentials, url: str) -> None:
    """A continuous AWS Config recorder, recording every supported type, in every region;
    seeded before the buckets, so that their items are captured after its start."""
    for region in REGIONS:
        seed_config_recorder(creds, url, region)


def seed_databases(creds: LabCredentials, url: str, instances: int, snapshots: int,
                   keys: dict[str, str]) -> None:
    """DB instances over the regions, two thirds encrypted, and manual snapshots of some."""
    clients = {r: creds.client("rds", r, url) for r in REGIONS}

    def make(index: int) -> None:
        region = REGIONS[index % len(REGIONS)]
        encrypted = index % 3 != 0
        options: dict[str, Any] = {"StorageEncrypted": encrypted}
        if encrypted:
            options["KmsKeyId"] = keys[region]
        clients[region].create_db_instance(
            DBInstanceIdentifier=f"db-{index:04d}", DBInstanceClass="db.t3.micro",
            Engine="postgres", MasterUsername="bench", MasterUserPassword="bench-fake-pw-1",
            AllocatedStorage=20, BackupRetentionPeriod=(index % 4) * 7, **options)

    def snap(index: int) -> None:
        region = REGIONS[index % len(REGIONS)]
        clients[region].create_db_snapshot(DBSnapshotIdentifier=f"snap-{index:04d}",
                                           DBInstanceIdentifier=f"db-{index:04d}")

    fan(make, range(instances))
    fan(snap, range(min(snapshots, instances)))


def seed_volumes_and_logs(creds: LabCredentials, url: str, volumes: int, groups: int,
                          keys: dict[str, str]) -> None:
    """EBS volumes (60% encrypted) and log groups (a third with a customer key, retention
    varied) over the regions, and a trail delivering to one of them."""
    ec2 = {r: creds.client("ec2", r, url) for r in REGIONS}
    logs = {r: creds.client("logs", r, url) for r in REGIONS}

    def volume(index: int) -> None:
        region = REGIONS[index % len(REGIONS)]
        options = {"Encrypted": True, "KmsKeyId": keys[region]} if index % 5 < 3 else {}
        ec2[region].create_volume(AvailabilityZone=f"{region}a", Size=1, **options)

    def group(index: int) -> None:
        region = REGIONS[index % len(REGIONS)]
        name = f"/bench/app-{index:04d}" if index else "org-audit-trail"
        options = {"kmsKeyId": keys[region]} if index % 3 == 0 else {}
        logs[region].create_log_group(logGroupName=name, **options)
        if index % 2:
            logs[region].put_retention_policy(logGroupName=name, retentionInDays=30)

    fan(volume, range(volumes))
    fan(group, range(groups))
    trail_bucket = f"bench-{creds.account_id}-trail"
    creds.client("s3", "us-east-1", url).create_bucket(Bucket=trail_bucket)
    creds.client("cloudtrail", "us-east-1", url).create_trail(
        Name="org", S3BucketName=trail_bucket, IsMultiRegionTrail=True,
        CloudWatchLogsLogGroupArn=f"arn:aws:logs:us-east-1:{creds.account_id}"
                                  ":log-group:org-audit-trail:*",
        CloudWatchLogsRoleArn=f"arn:aws:iam::{creds.account_id}:role/ct")


def seed(creds: LabCredentials, url: str, scale: float) -> dict[str, int]:
    """Seed the account; return how many of each resource it holds."""
    counts = {k: max(1, round(v * scale)) for k, v in COUNTS.items()}
    keys = {r: creds.client("kms", r, url).create_key()["KeyMetadata"]["Arn"] for r in REGIONS}
    seed_config(creds, url)
    seed_buckets(creds, url, counts["buckets"], keys)
    seed_databases(creds, url, counts["db_instances"], counts["db_snapshots"], keys)
    seed_volumes_and_logs(creds, url, counts["volumes"], counts["log_groups"], keys)
    counts["buckets"] += 1  # the trail's bucket
    return counts


class BatchLog:
    """
    The buckets each `BatchGetResourceConfig` asked for, noted from its parameters (the call
    log's subject names only a batch's first and last bucket), so a batch counts once per
    bucket in it.
    """

    def __init__(self) -> None:
        self.keys: list[tuple[str, str]] = []

    def watch(self, ctx: CheckContext, account: AwsAccountConfig) -> None:
        """Note the parameters of every batch call made through the scan's Config clients."""
        session = ctx.clients.aws(account)
        for region in REGIONS:
            session.client("config", region).meta.events.register(
                "before-parameter-build.config.BatchGetResourceConfig",
                lambda params, region=region, **_: self.keys.extend(
                    (region, str(k.get("resourceId"))) for k in params.get("resourceKeys", ())))


def run_scan(url: str, phi_buckets: str, trace: bool, policy: Policy, use_aws_config: bool | None
             ) -> tuple[CheckContext, list[Finding], BatchLog, float, float]:
    """Every check through the runner, with a fresh memo; the context, findings, the batch
    calls' buckets, seconds and peak MiB. `use_aws_config` None leaves the default."""
    fields: dict[str, Any] = {"name": "bench", "regions": list(REGIONS), "endpoint_url": url,
                              "phi_resources": [phi_buckets, *OTHER_PHI_STORES]}
    if use_aws_config is not None:
        fields["use_aws_config"] = use_aws_config
    account = BenchAccount.model_validate(fields)
    target = Target(TargetKind.AWS, "aws:bench", "bench", account)
    ctx = CheckContext(clients=Clients(timeout=30), policy=policy,
                       logger=logging.getLogger("bench"), clock=lambda: datetime.now(UTC),
                       timeout=30)
    batches = BatchLog()
    batches.watch(ctx, account)
    registry = Registry.from_checks(family_checks())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if trace:
        tracemalloc.start()
    started, cpu = time.monotonic(), time.process_time()
    results, _ = Runner(ctx, workers=8, deadline=900).run(plan(registry, [target]))
    seconds = time.monotonic() - started
    print(f"scan: {seconds:.1f} s wall, {time.process_time() - cpu:.1f} s CPU in this process",
          file=sys.stderr)
    if trace:
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return ctx, [f for found in results.values() for f in found], batches, seconds, peak


def fetched_twice(ctx: CheckContext, batches: BatchLog) -> dict[tuple[str, ...], int]:
    """Reads made more than once: first pages, each batch call counted once per bucket."""
    reads: Counter[tuple[str, ...]] = Counter(
        c.identity for c in ctx.clients.aws_calls()
        if not c.continued and c.operation != "BatchGetResourceConfig")
    reads.update(("config", region, "BatchGetResourceConfig", f"resourceId={name}")
                 for region, name in batches.keys)
    return {k: n for k, n in reads.items() if n > 1}


def report(ctx: CheckContext, counts: dict[str, int], findings: int, batches: BatchLog,
           seconds: float, peak: float, trace: bool) -> dict[str, Any]:
    """The figures, printed and returned."""
    calls = ctx.clients.aws_calls()
    by_service = Counter(c.service for c in calls)
    twice = fetched_twice(ctx, batches)
    total = sum(counts.values()) + counts["db_instances"]  # moto's automated snapshots
    figures = {
        "resources": counts, "resources_total": total, "findings": findings,
        "wall_seconds": round(seconds, 1), "api_calls": len(calls),
        "calls_by_service": dict(by_service.most_common()),
        "calls_per_resource": round(len(calls) / total, 3),
        "bucket_calls_per_bucket": round(
            (by_service["s3"] + by_service["config"]) / counts["buckets"], 3),
        "bucket_calls_by_operation": dict(Counter(
            c.operation for c in calls if c.service in ("s3", "config")).most_common()),
        "s3_calls_per_bucket": round(by_service["s3"] / counts["buckets"], 3),
        "rds_calls_per_instance_or_snapshot": round(
            by_service["rds"] / (2 * counts["db_instances"] + counts["db_snapshots"]), 3),
        "ec2_calls_per_volume": round(by_service["ec2"] / counts["volumes"], 3),
        "logs_calls_per_log_group": round(by_service["logs"] / counts["log_groups"], 3),
        "peak_mib": round(peak, 1), "peak_measure": "tracemalloc" if trace else "rss growth",
        "mib_per_1000_resources": round(peak / total * 1000, 2),
        "fetched_twice": len(twice), "fetched_twice_examples": [list(k) for k in
                                                                list(twice)[:5]],
    }
    print(json.dumps(figures, indent=2))
    return figures


def compare(with_config: dict[tuple[str, str], Any],
            without: dict[tuple[str, str], Any]) -> dict[str, Any]:
    """Whether both scans judged the same resources the same way."""
    differ = sorted(k for k in with_config.keys() & without.keys()
                    if with_config[k] != without[k])
    return {"same_findings": with_config.keys() == without.keys(),
            "status_differences": len(differ),
            "status_difference_examples": [list(k) for k in differ[:5]]}


def main() -> None:
    """Parse options, seed, scan, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--phi-buckets", default="*",
                        help="glob of bucket names in the PHI scope (default every bucket)")
    parser.add_argument("--strict", action="store_true",
                        help="judge with require_customer_managed_keys: true")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--variants", action="store_true",
                        help="also scan the same account with --phi-buckets '*-phi-*' and with "
                        "--strict (memory is measured on the first scan only)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    child, url = start_server()
    try:
        creds = create_isolated_account(url)
        started = time.monotonic()
        counts = seed(creds, url, args.scale)
        print(f"seeded {counts} in {time.monotonic() - started:.1f} s", file=sys.stderr)
        os.environ.update(creds.env())
        runs = [(args.phi_buckets, args.strict)]
        if args.variants:
            runs += [("*-phi-*", False), ("*", True)]
        for phi, strict in runs:
            policy = Policy(require_customer_managed_keys=strict)
            verdicts = []
            for use_config in (True, None):
                default = AwsAccountConfig.model_fields["use_aws_config"].default
                label = "true" if use_config else f"default ({str(default).lower()})"
                print(f"scan with PHI buckets {phi!r}, strict={strict}, "
                      f"use_aws_config: {label}", file=sys.stderr)
                ctx, found, batches, seconds, peak = run_scan(url, phi, args.tracemalloc,
                                                              policy, use_config)
                print(f"use_aws_config: {label}")
                report(ctx, counts, len(found), batches, seconds, peak, args.tracemalloc)
                verdicts.append({(f.check_id, f.resource): f.status for f in found})
            print(json.dumps(compare(*verdicts), indent=2))
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)


if __name__ == "__main__":
    main()
