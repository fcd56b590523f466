"""`merge s3://bucket/prefix` reads shard results from S3 (moto on loopback), read-only."""

from __future__ import annotations

import json
import secrets

import pytest
from cli.nightly_lab import CLEAN, LEAKY, invoke, write_lab

from hipaacheck.errors import UsageError
from hipaacheck.lab.aws import create_isolated_account, start_moto_server
from hipaacheck.sharding import read_s3_documents


@pytest.fixture
def s3(tmp_path, monkeypatch):
    """A moto server, a fresh account in it reached through the default chain, one bucket."""
    server, url = start_moto_server()
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_SESSION_TOKEN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    creds = create_isolated_account(url)
    for name, value in creds.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    client = creds.client("s3", "us-east-1", url)
    bucket = f"hipaacheck-shards-{secrets.token_hex(6)}"  # moto's bucket names are process-wide
    client.create_bucket(Bucket=bucket)
    yield client, bucket
    server.stop()


def test_merge_from_an_s3_prefix_equals_the_local_merge(tmp_path, s3):
    client, bucket = s3
    # Given two shard results uploaded under a prefix, and an unrelated object beside them
    config = write_lab(tmp_path, {"api": LEAKY, "web": CLEAN, "batch": CLEAN})
    local = []
    for k in (1, 2):
        out = tmp_path / f"s{k}"
        invoke("scan", "-c", str(config), "--shard", f"{k}/2", "--out", str(out), "-f", "json",
               "--no-history")
        local.append(str(out / "report.json"))
        client.put_object(Bucket=bucket, Key=f"nightly/shard-{k}.json",
                      Body=(out / "report.json").read_bytes())
    client.put_object(Bucket=bucket, Key="nightly/README.txt", Body=b"not a shard")
    # When the prefix is merged
    remote = invoke("merge", f"s3://{bucket}/nightly/", "--out", str(tmp_path / "r"),
                    "-f", "json", "--no-history")
    here = invoke("merge", *local, "--out", str(tmp_path / "l"), "-f", "json", "--no-history")
    # Then it is the same merge as from the local files
    assert remote.exit_code == here.exit_code == 1, remote.output
    strip = lambda d: {**d, "scan": {k: v for k, v in d["scan"].items()
                                     if k not in ("started", "finished")}}
    assert strip(json.loads((tmp_path / "r" / "report.json").read_text())) == strip(
        json.loads((tmp_path / "l" / "report.json").read_text()))


def test_empty_or_missing_prefix_is_a_usage_error(s3):
    _, bucket = s3
    with pytest.raises(UsageError):
        read_s3_documents(f"s3://{bucket}/nothing-here/")
    with pytest.raises(UsageError):
        read_s3_documents("s3://no-such-bucket-for-hipaacheck/x/")
    with pytest.raises(UsageError):
        read_s3_documents("s3:///x")
