"""Grants are generated from declared operations and stay read-only."""

from __future__ import annotations

import json

import pytest
import yaml
from fakes import meta
from typer.testing import CliRunner

from hipaacheck.cli import app
from hipaacheck.clients.aws import NAMED_READS
from hipaacheck.errors import RegistryError
from hipaacheck.model import Operation, System
from hipaacheck.permissions import kubernetes_cluster_role
from hipaacheck.registry import load_registry

runner = CliRunner()
READ_PREFIXES = ("Describe", "Get", "List", "Head")


def test_aws_policy_holds_exactly_the_declared_read_actions():
    result = runner.invoke(app, ["permissions", "aws"])
    assert result.exit_code == 0
    actions = json.loads(result.stdout)["Statement"][0]["Action"]
    declared = {op.action for m in load_registry().metas() for op in m.operations
                if op.system is System.AWS}
    assert set(actions) == declared
    assert "s3:GetEncryptionConfiguration" in actions and "rds:DescribeDBInstances" in actions
    # Every action is a Describe/Get/List/Head, one of the client's few named reads, or
    # API Gateway's read permission (its IAM actions are HTTP methods).
    assert all(a.split(":", 1)[1].startswith(READ_PREFIXES) or a.split(":", 1)[1] in NAMED_READS
               or a == "apigateway:GET" for a in actions)


def test_cluster_role_has_only_get_and_list():
    result = runner.invoke(app, ["permissions", "kubernetes"])
    assert result.exit_code == 0
    role = yaml.safe_load(result.stdout)
    assert role["kind"] == "ClusterRole"
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert verbs <= {"get", "list", "watch"} and verbs
    assert {"storageclasses"} <= {r for rule in role["rules"] for r in rule["resources"]}


def test_write_verb_is_refused():
    bad = meta("x.y")
    bad = type(bad)(**{**bad.__dict__, "operations": (
        Operation(System.KUBERNETES, "delete pods"),)})
    with pytest.raises(RegistryError):
        kubernetes_cluster_role([bad])


def test_postgres_role_is_read_only():
    result = runner.invoke(app, ["permissions", "postgres"])
    assert result.exit_code == 0
    assert "default_transaction_read_only = on" in result.stdout
    assert "pg_read_all_settings" in result.stdout


def test_secrets_are_left_out_of_the_cluster_role_unless_asked_for():
    default = yaml.safe_load(runner.invoke(app, ["permissions", "kubernetes"]).stdout)
    assert "secrets" not in {r for rule in default["rules"] for r in rule["resources"]}
    opted = runner.invoke(app, ["permissions", "kubernetes", "--include-secrets"])
    rules = yaml.safe_load(opted.stdout)["rules"]
    assert any(rule["resources"] == ["secrets"] and rule["verbs"] == ["get"] for rule in rules)


def test_an_empty_grant_is_refused():
    assert runner.invoke(app, ["permissions", "aws", "--only", "tls"]).exit_code == 2
