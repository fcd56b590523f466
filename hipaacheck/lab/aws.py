"""
The AWS part of the lab: a local moto server seeded with sound and broken storage.

The server runs in a thread of this process on 127.0.0.1 and an ephemeral port. Every lab gets
its own AWS account inside moto (an assumed role in a random account id), so two labs started
in one process never see each other's resources. Seeding writes through plain boto3 clients
with fake credentials; the scan gets its own fake credentials through `LabPart.env` and reads
through hipaacheck's guarded clients like any real account.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

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
    _session: boto3.session.Session = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # A session of its own: boto3's shared default session is not safe across the threads
        # that start lab components concurrently. Use it from one thread at a time.
        object.__setattr__(self, "_session", boto3.session.Session(
            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key,
            aws_session_token=self.session_token))

    def env(self, region: str = LAB_REGIONS[0]) -> dict[str, str]:
        """The environment that makes the default credential chain find these credentials."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
            "AWS_DEFAULT_REGION": region,
        }

    def client(self, service: str, region: str, endpoint_url: str) -> Any:
        """A plain, unguarded boto3 client in this account, for seeding."""
        return self._session.client(
            service, region_name=region, endpoint_url=endpoint_url,
            config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 1},
                          s3={"addressing_style": "path"}))


def start_moto_server() -> tuple[ThreadedMotoServer, str]:
    """
    Start a moto server on 127.0.0.1 and an ephemeral port; return it and its URL.
    """
    # werkzeug logs every request line at INFO; the lab keeps it to warnings.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
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
    sts = boto3.session.Session().client("sts", region_name=LAB_REGIONS[0], endpoint_url=endpoint_url,
                       aws_access_key_id=_SEED_ACCESS_KEY,
                       aws_secret_access_key=_SEED_SECRET_KEY,
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


def seed_account(creds: LabCredentials, endpoint_url: str) -> list[str]:
    """
    Seed every lab region of the account; return notes describing what was created.
    """
    prefix = f"hipaacheck-lab-{creds.account_id}"
    notes = []
    for region in LAB_REGIONS:
        kms = creds.client("kms", region, endpoint_url)
        key_arn = kms.create_key(Description="hipaacheck lab customer-managed key")[
            "KeyMetadata"]["Arn"]
        buckets = seed_s3(creds, endpoint_url, region, key_arn, prefix)
        seed_rds(creds, endpoint_url, region, key_arn, LAB_DB_INSTANCES[region])
        notes.append(f"{region}: S3 buckets {', '.join(sorted(buckets))}")
        notes.append(f"{region}: RDS instances {', '.join(sorted(LAB_DB_INSTANCES[region]))}")
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
