"""
The `logs.sinks` section takes file, CloudWatch, S3 and pod-log sinks, keeps the old file-sink
form valid, refuses what it does not know by key path, and routes each kind to its own check.
"""

from __future__ import annotations

import pytest

from hipaacheck.checks.logs.cloudwatch import PhiInCloudWatchLogs, sink_account
from hipaacheck.checks.logs.files import PhiInLogFiles
from hipaacheck.checks.logs.pods import PhiInPodLogs, sink_cluster
from hipaacheck.checks.logs.s3 import PhiInS3Logs
from hipaacheck.config import (
    CloudWatchSinkConfig,
    LogSinkConfig,
    PodLogSinkConfig,
    S3LogSinkConfig,
    parse_inventory,
)
from hipaacheck.errors import ConfigError
from hipaacheck.model import TargetKind

INVENTORY = """
aws:
  accounts:
    - &prod {name: prod, regions: [us-east-1, eu-west-1], role_arn: "arn:aws:iam::1:role/a",
             external_id: "${EXTERNAL}"}
logs:
  sinks:
    - {name: app, paths: [/var/log/app/*.log]}
    - {name: cw, kind: cloudwatch, account: *prod, log_group_prefixes: [/clinic/]}
    - {name: alb, kind: s3, account: *prod, bucket: clinic-alb-logs, prefixes: [AWSLogs/]}
    - {name: k8s, kind: pods, cluster: {name: prod}, namespaces: [clinical],
       label_selectors: ["app in (api,worker)"], tail_lines: 200}
"""


def test_every_sink_kind_is_a_log_sink_target_of_its_own_check() -> None:
    inventory = parse_inventory(INVENTORY, env={"EXTERNAL": "ext-secret-1"})
    targets = [t for t in inventory.targets() if t.kind == TargetKind.LOG_SINK]
    assert [(t.id, type(t.config)) for t in targets] == [
        ("logs:app", LogSinkConfig), ("logs:cw", CloudWatchSinkConfig),
        ("logs:alb", S3LogSinkConfig), ("logs:k8s", PodLogSinkConfig)]
    checks = [PhiInLogFiles(), PhiInCloudWatchLogs(), PhiInS3Logs(), PhiInPodLogs()]
    for target, expected in zip(targets, checks, strict=True):
        assert [type(c) for c in checks if c.applies_to(target)] == [type(expected)]


def test_a_sink_reads_through_a_session_of_its_own_with_the_same_credentials() -> None:
    inventory = parse_inventory(INVENTORY, env={"EXTERNAL": "ext-secret-1"})
    cw, pods = inventory.logs.sinks[1], inventory.logs.sinks[3]
    assert isinstance(cw, CloudWatchSinkConfig) and isinstance(pods, PodLogSinkConfig)
    account = sink_account(cw)
    assert account.name == "prod (logs sink cw)" and account.name != cw.account.name
    assert account.external_id is not None and account.external_id.reveal() == "ext-secret-1"
    assert account.regions == ["us-east-1", "eu-west-1"]
    assert sink_cluster(pods).name == "prod (logs sink k8s)"
    assert "ext-secret-1" not in inventory.fingerprint() + repr(inventory)


@pytest.mark.parametrize(("text", "path"), [
    ("logs: {sinks: [{name: a, paths: [x], colour: red}]}", "logs.sinks[0].colour"),
    ("logs: {sinks: [{name: a, kind: s3, account: {name: p, regions: [r]}}]}",
     "logs.sinks[0].bucket"),
    ("logs: {sinks: [{name: a, kind: syslog}]}", "logs.sinks[0]: kind must be one of"),
    ("logs: {sinks: [{name: a, kind: cloudwatch, account: {name: p, regions: [r]}}]}",
     "name at least one log group"),
    ("logs: {sinks: [{name: a, kind: pods, cluster: {name: c}, tail_lines: 0}]}",
     "logs.sinks[0].tail_lines"),
])
def test_invalid_sinks_are_refused_by_key_path(text: str, path: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_inventory(text)
    assert path in str(raised.value)


def test_the_old_file_sink_form_stays_valid() -> None:
    [sink] = parse_inventory("logs: {sinks: [{name: a, paths: [x], max_bytes_per_file: 9}]}"
                             ).logs.sinks
    assert isinstance(sink, LogSinkConfig)
    assert (sink.kind, sink.max_bytes_per_file, sink.max_bytes_per_sink) == ("files", 9,
                                                                             4096 << 20)
