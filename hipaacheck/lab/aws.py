"""
The AWS part of the lab: a local moto server seeded with sound and broken storage.

Each region holds cases for the encryption and backup checks: buckets with and without
default encryption, versioning and early-expiring lifecycles; RDS instances with short and
long backup retention and an unencrypted manual snapshot; DynamoDB tables with and without
point-in-time recovery; EBS volumes (one on a disabled KMS key) and an unencrypted snapshot;
a CloudTrail trail whose bucket and log group keep records less than six years; an
unencrypted EFS file system; AWS Backup vaults, locked and not, and a plan with a rule that
keeps recovery points three days.

The server runs in a thread of this process on 127.0.0.1 and an ephemeral port. Every lab gets
its own AWS account inside moto (an assumed role in a random account id), so two labs started
in one process never see each other's resources. Seeding writes through plain boto3 clients
with fake credentials; the scan gets its own fake credentials through `LabPart.env` and reads
through hipaacheck's guarded clients like any real account.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
from botocore.config import Config
from moto.server import ThreadedMotoServer

from hipaacheck.clients.aws import new_botocore_session
from hipaacheck.errors import LabError
from hipaacheck.lab.base import LabPart

logger = logging.getLogger(__name__)

LAB_REGIONS: tuple[str, ...] = ("us-east-1", "eu-west-1")
"""The regions the lab seeds, in the order the inventory lists them."""

# Fake values moto accepts; they only ever reach the local server.
_SEED_ACCESS_KEY = "hipaacheck-lab-fake-access-key"
_SEED_SECRET_KEY = "hipaacheck-lab-fake-secret-key"
_FAKE_DB_PASSWORD = "lab-fake-password-1"


@dataclass(frozen=True)
class LabCredentials:
    """
    Fake credentials for one isolated account inside a moto server.
    """

    account_id: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    _session: botocore.session.Session = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # A session of its own: a shared default session is not safe across the threads that
        # start lab components concurrently. Clients made from it may be used from any thread.
        session = new_botocore_session()
        session.set_credentials(self.access_key_id, self.secret_access_key, self.session_token)
        object.__setattr__(self, "_session", session)

    def env(self, region: str = LAB_REGIONS[0]) -> dict[str, str]:
        """The environment that makes the default credential chain find these credentials."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
            "AWS_DEFAULT_REGION": region,
        }

    def client(self, service: str, region: str, endpoint_url: str) -> Any:
        """A plain, unguarded botocore client in this account, for seeding."""
        return self._session.create_client(
            service, region_name=region, endpoint_url=endpoint_url,
            config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 1},
                          s3={"addressing_style": "path"}))


def start_moto_server() -> tuple[ThreadedMotoServer, str]:
    """
    Start a moto server on 127.0.0.1 and an ephemeral port; return it and its URL.
    """
    # werkzeug logs every request line at INFO, and a traceback for each action moto has not
    # implemented (it answers 500, which the scan reports as UNVERIFIED): keep it quiet.
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    # NOTE: moto would otherwise seed every region's EC2 backend with about 1,300 public AMI
    # snapshots, which cost seconds and are not the lab's own; set before EC2 is first used.
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    try:
        server.start()
        host, port = server.get_host_and_port()
    except OSError as exc:
        raise LabError(f"the moto server could not start ({exc.strerror})") from None
    return server, f"http://{host}:{port}"


def create_isolated_account(endpoint_url: str) -> LabCredentials:
    """
    Credentials for a fresh, empty account in the moto server at `endpoint_url`.

    moto maps the credentials of a role assumed in another account to that account, so a
    random account id gives a namespace no other lab or test shares.
    """
    account_id = str(100000000000 + secrets.randbelow(899999999999))
    sts = new_botocore_session().create_client(
        "sts", region_name=LAB_REGIONS[0], endpoint_url=endpoint_url,
        aws_access_key_id=_SEED_ACCESS_KEY, aws_secret_access_key=_SEED_SECRET_KEY,
        config=Config(connect_timeout=5, read_timeout=10))
    role = f"arn:aws:iam::{account_id}:role/hipaacheck-lab"
    creds = sts.assume_role(RoleArn=role, RoleSessionName="hipaacheck-lab")["Credentials"]
    return LabCredentials(account_id, creds["AccessKeyId"], creds["SecretAccessKey"],
                          creds["SessionToken"])


def seed_s3(creds: LabCredentials, endpoint_url: str, region: str, key_arn: str,
            prefix: str) -> dict[str, str]:
    """
    Create buckets with SSE-S3, SSE-KMS (customer key) and no default encryption in `region`.

    Returns bucket name to the status the default-encryption check should give it.
    """
    s3 = creds.client("s3", region, endpoint_url)
    names = {kind: f"{prefix}-{region}-{kind}" for kind in ("sse-s3", "sse-kms", "none")}
    for name in names.values():
        options = {} if region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=name, **options)
    s3.put_bucket_encryption(Bucket=names["sse-s3"], ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_bucket_encryption(Bucket=names["sse-kms"], ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}, "BucketKeyEnabled": True}]})
    # moto leaves new buckets unencrypted; real S3 would apply SSE-S3, so remove it explicitly.
    s3.delete_bucket_encryption(Bucket=names["none"])
    return {names["sse-s3"]: "PASS", names["sse-kms"]: "PASS", names["none"]: "FAIL"}


def seed_rds(creds: LabCredentials, endpoint_url: str, region: str, key_arn: str,
             instances: dict[str, tuple[bool, int]]) -> None:
    """
    Create DB instances in `region`: identifier to (storage encrypted, backup retention days).
    """
    rds = creds.client("rds", region, endpoint_url)
    for identifier, (encrypted, retention) in instances.items():
        options: dict[str, Any] = {"StorageEncrypted": encrypted}
        if encrypted:
            options["KmsKeyId"] = key_arn
        rds.create_db_instance(
            DBInstanceIdentifier=identifier, DBInstanceClass="db.t3.micro", Engine="postgres",
            MasterUsername="labadmin", MasterUserPassword=_FAKE_DB_PASSWORD,
            AllocatedStorage=20, BackupRetentionPeriod=retention, **options)


# identifier -> (storage encrypted, backup retention days), per region.
LAB_DB_INSTANCES: dict[str, dict[str, tuple[bool, int]]] = {
    "us-east-1": {"patients-primary": (True, 35), "reporting": (True, 14),
                  "legacy-intake": (False, 1)},
    "eu-west-1": {"eu-patients": (True, 14), "eu-scratch": (False, 0)},
}
"""What the lab seeds in RDS. The default policy wants 7 days and recommends 35."""


def seed_keys(creds: LabCredentials, endpoint_url: str, region: str) -> dict[str, str]:
    """
    Create the region's customer-managed keys: `main` (rotation on in us-east-1 only) and
    `retired` (disabled). Returns role to key ARN.
    """
    kms = creds.client("kms", region, endpoint_url)
    main = kms.create_key(Description="hipaacheck lab customer-managed key")["KeyMetadata"]
    retired = kms.create_key(Description="hipaacheck lab retired key")["KeyMetadata"]
    if region == LAB_REGIONS[0]:
        kms.enable_key_rotation(KeyId=main["KeyId"])
    kms.disable_key(KeyId=retired["KeyId"])
    return {"main": main["Arn"], "retired": retired["Arn"]}


REQUIRE_KMS_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "DenyNonKmsUploads", "Effect": "Deny", "Principal": "*",
                   "Action": "s3:PutObject", "Resource": "arn:aws:s3:::{bucket}/*",
                   "Condition": {"StringNotEquals": {
                       "s3:x-amz-server-side-encryption": "aws:kms"}}}]}
"""A bucket policy refusing uploads without SSE-KMS (`{bucket}` is filled in)."""


def seed_s3_retention(creds: LabCredentials, endpoint_url: str, region: str,
                      buckets: dict[str, str]) -> None:
    """
    Versioning on the SSE-KMS bucket; a lifecycle on the SSE-S3 bucket that expires noncurrent
    versions after 3 days; in eu-west-1, a bucket policy on it that requires SSE-KMS.
    """
    s3 = creds.client("s3", region, endpoint_url)
    by_kind = {name.rsplit("-", 1)[-1]: name for name in buckets}
    s3.put_bucket_versioning(Bucket=by_kind["kms"],
                             VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket=by_kind["s3"], LifecycleConfiguration={
        "Rules": [{"ID": "drop-old-versions", "Status": "Enabled", "Filter": {"Prefix": ""},
                   "NoncurrentVersionExpiration": {"NoncurrentDays": 3}}]})
    if region != LAB_REGIONS[0]:
        policy = json.dumps(REQUIRE_KMS_POLICY).replace("{bucket}", by_kind["s3"])
        s3.put_bucket_policy(Bucket=by_kind["s3"], Policy=policy)


def seed_audit_trail(creds: LabCredentials, endpoint_url: str, region: str, key_arn: str,
                     prefix: str) -> dict[str, str]:
    """
    A multi-region CloudTrail trail delivering to an SSE-KMS, versioned bucket that expires
    objects after a year, and to a log group kept 30 days: both short of six years.
    """
    s3 = creds.client("s3", region, endpoint_url)
    bucket = f"{prefix}-trail"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}}]})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={
        "Rules": [{"ID": "one-year", "Status": "Enabled", "Filter": {"Prefix": ""},
                   "Expiration": {"Days": 365}}]})
    logs = creds.client("logs", region, endpoint_url)
    logs.create_log_group(logGroupName="org-audit-trail")
    logs.put_retention_policy(logGroupName="org-audit-trail", retentionInDays=30)
    logs.create_log_group(logGroupName="app-service", kmsKeyId=key_arn)
    group_arn = f"arn:aws:logs:{region}:{creds.account_id}:log-group:org-audit-trail:*"
    creds.client("cloudtrail", region, endpoint_url).create_trail(
        Name="org-trail", S3BucketName=bucket, IsMultiRegionTrail=True,
        CloudWatchLogsLogGroupArn=group_arn,
        CloudWatchLogsRoleArn=f"arn:aws:iam::{creds.account_id}:role/cloudtrail-logs")
    return {"bucket": bucket, "log_group": "org-audit-trail"}


def seed_config_recorder(creds: LabCredentials, endpoint_url: str, region: str, *,
                         resource_types: tuple[str, ...] | None = None,
                         start: bool = True) -> str:
    """
    An AWS Config recorder in `region` with a delivery channel, recording every supported
    resource type (or only `resource_types`) continuously; started unless `start` is false.
    Returns the recorder's name.

    Seed it before the buckets whose items a scan should use: moto captures a bucket's item
    at the bucket's creation, and hipaacheck uses only items captured at or after the
    recorder's last start. moto's status stays `lastStatus: PENDING` after the start (it
    models no recording or delivery, and has no DeliverConfigSnapshot), which hipaacheck does
    not trust; AWS says SUCCESS once the recorder has recorded, so a test or benchmark of the
    Config path must have the status answered as AWS would (and says so). moto also computes
    `lastStartTime` with `time.mktime` on a naive UTC time, so it is right only where local
    time is UTC.

    NOTE: the lab's own regions get no recorder: moto's recorded S3 items give every
    lifecycle rule `noncurrentVersionExpirationInDays: -1` (none), so a scan reading them
    would pass the lab's buckets whose noncurrent versions expire after three days.
    """
    config = creds.client("config", region, endpoint_url)
    group: dict[str, Any] = ({"allSupported": True, "includeGlobalResourceTypes": False}
                             if resource_types is None else
                             {"allSupported": False, "resourceTypes": list(resource_types)})
    name = "default"
    config.put_configuration_recorder(ConfigurationRecorder={
        "name": name, "roleARN": f"arn:aws:iam::{creds.account_id}:role/config-recorder",
        "recordingGroup": group})
    config.put_delivery_channel(DeliveryChannel={
        "name": name, "s3BucketName": f"config-delivery-{creds.account_id}-{region}"})
    if start:
        config.start_configuration_recorder(ConfigurationRecorderName=name)
    return name


def seed_dynamodb(creds: LabCredentials, endpoint_url: str, region: str,
                  tables: dict[str, tuple[str | None, bool]]) -> None:
    """Create tables: name to (KMS key ARN or None for the AWS-owned key, PITR on)."""
    ddb = creds.client("dynamodb", region, endpoint_url)
    for name, (key, pitr) in tables.items():
        options: dict[str, Any] = {}
        if key:
            options["SSESpecification"] = {"Enabled": True, "SSEType": "KMS",
                                           "KMSMasterKeyId": key}
        ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         **options)
        if pitr:
            ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": True})


def seed_ebs(creds: LabCredentials, endpoint_url: str, region: str,
             volumes: dict[str, str | None], *, by_default: bool) -> dict[str, str]:
    """
    Create volumes (label to KMS key ARN, or None for unencrypted) and an unencrypted snapshot
    of each unencrypted one; turn encryption by default on when asked. Returns label to id.
    """
    ec2 = creds.client("ec2", region, endpoint_url)
    ids = {}
    for label, key in volumes.items():
        options: dict[str, Any] = {"Encrypted": True, "KmsKeyId": key} if key else {}
        volume = ec2.create_volume(AvailabilityZone=f"{region}a", Size=1, **options)
        ids[label] = volume["VolumeId"]
        if key is None:
            ec2.create_snapshot(VolumeId=volume["VolumeId"], Description=f"{label} backup")
    if by_default:
        ec2.enable_ebs_encryption_by_default()
    return ids


def seed_backup(creds: LabCredentials, endpoint_url: str, region: str, key_arn: str) -> None:
    """
    A locked vault with a customer key, an unlocked vault, and a plan with a sound daily rule
    and a weekly rule that keeps recovery points three days.
    """
    backup = creds.client("backup", region, endpoint_url)
    backup.create_backup_vault(BackupVaultName="phi-vault", EncryptionKeyArn=key_arn)
    backup.put_backup_vault_lock_configuration(BackupVaultName="phi-vault",
                                               MinRetentionDays=7, MaxRetentionDays=3650)
    backup.create_backup_vault(BackupVaultName="scratch-vault")
    backup.create_backup_plan(BackupPlan={"BackupPlanName": "phi-daily", "Rules": [
        {"RuleName": "daily-35", "TargetBackupVaultName": "phi-vault",
         "ScheduleExpression": "cron(0 5 ? * * *)", "Lifecycle": {"DeleteAfterDays": 35}},
        {"RuleName": "weekly-short", "TargetBackupVaultName": "scratch-vault",
         "ScheduleExpression": "cron(0 5 ? * SUN *)", "Lifecycle": {"DeleteAfterDays": 3}}]})


def seed_region_extras(creds: LabCredentials, endpoint_url: str, region: str,
                       keys: dict[str, str], prefix: str) -> list[str]:
    """The lab's cases for the encryption and backup tables, KMS and AWS Backup checks."""
    notes = []
    if region == LAB_REGIONS[0]:
        trail = seed_audit_trail(creds, endpoint_url, region, keys["main"], prefix)
        seed_dynamodb(creds, endpoint_url, region,
                      {"patients": (keys["main"], True), "sessions": (None, False)})
        seed_ebs(creds, endpoint_url, region, {"data": keys["main"], "scratch": None,
                                               "archive": keys["retired"]}, by_default=True)
        notes.append(f"{region}: CloudTrail to {trail['bucket']} and {trail['log_group']}; "
                     "DynamoDB patients, sessions; EBS volumes data, scratch, archive")
    else:
        creds.client("efs", region, endpoint_url).create_file_system(
            CreationToken="lab-shared", Encrypted=False)
        creds.client("rds", region, endpoint_url).create_db_snapshot(
            DBSnapshotIdentifier="eu-scratch-manual", DBInstanceIdentifier="eu-scratch")
        seed_backup(creds, endpoint_url, region, keys["main"])
        notes.append(f"{region}: EFS lab-shared (unencrypted); snapshot eu-scratch-manual; "
                     "backup vaults phi-vault, scratch-vault and plan phi-daily")
    return notes


def seed_account(creds: LabCredentials, endpoint_url: str) -> list[str]:
    """
    Seed every lab region of the account; return notes describing what was created.
    """
    prefix = f"hipaacheck-lab-{creds.account_id}"
    notes = []
    for region in LAB_REGIONS:
        keys = seed_keys(creds, endpoint_url, region)
        buckets = seed_s3(creds, endpoint_url, region, keys["main"], prefix)
        seed_s3_retention(creds, endpoint_url, region, buckets)
        seed_rds(creds, endpoint_url, region, keys["main"], LAB_DB_INSTANCES[region])
        notes.append(f"{region}: S3 buckets {', '.join(sorted(buckets))}")
        notes.append(f"{region}: RDS instances {', '.join(sorted(LAB_DB_INSTANCES[region]))}")
        notes += seed_region_extras(creds, endpoint_url, region, keys, prefix)
    return notes


def start_aws_lab(workdir: Path) -> LabPart:
    """
    Start a seeded moto server and describe it as a lab part.

    `workdir` is accepted for the common lab interface; this part keeps everything in memory.
    """
    server, url = start_moto_server()
    stopped = threading.Event()

    def stop() -> None:
        if not stopped.is_set():
            stopped.set()
            server.stop()

    try:
        creds = create_isolated_account(url)
        notes = seed_account(creds, url)
    except Exception as exc:
        stop()
        logger.debug("AWS lab seeding failed", exc_info=True)
        raise LabError(f"seeding the AWS lab failed ({type(exc).__name__})") from None
    logger.info("AWS lab on %s, account %s", url, creds.account_id)
    inventory = {"aws": {"accounts": [
        {"name": "lab", "regions": list(LAB_REGIONS), "endpoint_url": url}]}}
    return LabPart(name="aws", inventory=inventory, env=creds.env(), stop=stop,
                   notes=[f"moto server on {url}", *notes])
