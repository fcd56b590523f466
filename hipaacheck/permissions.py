"""
Least-privilege grants derived from the operations the selected checks declare.

The same declarations that document a check generate the IAM policy, the Kubernetes ClusterRole
and the PostgreSQL role a scan needs, so the documented permissions cannot drift from the code.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable

import yaml

from hipaacheck.errors import RegistryError, UsageError
from hipaacheck.model import CheckMeta, System

READ_VERBS = frozenset({"get", "list", "watch"})
# API groups whose names have no dot; every other group name contains one.
UNDOTTED_GROUPS = frozenset({"apps", "batch", "autoscaling", "policy"})


def _actions(metas: Iterable[CheckMeta], system: System) -> list[str]:
    return sorted({op.action for m in metas for op in m.operations if op.system is system})


# Reading Secrets cluster-wide would let the scanner read every credential: left out of the
# ClusterRole unless asked for, and then better granted per namespace with resourceNames.
SENSITIVE_RESOURCES = frozenset({"secrets"})


def _required(actions: list[str], system: System) -> list[str]:
    if not actions:
        raise UsageError(f"the selected checks make no {system.value} operation; "
                         "there is no grant to write")
    return actions


def aws_policy(metas: Iterable[CheckMeta]) -> str:
    """An IAM policy document allowing exactly the declared AWS actions."""
    actions = _required(_actions(metas, System.AWS), System.AWS)
    policy = {"Version": "2012-10-17", "Statement": [{
        "Sid": "HipaacheckReadOnly", "Effect": "Allow", "Action": actions, "Resource": "*"}]}
    return json.dumps(policy, indent=2) + "\n"


def _split_k8s(action: str) -> tuple[str, str, str]:
    verb, _, resource = action.partition(" ")
    head, _, tail = resource.partition("/")
    is_group = bool(tail) and ("." in head or head in UNDOTTED_GROUPS)
    group, name = (head, tail) if is_group else ("", resource)
    if verb not in READ_VERBS or not name:
        raise RegistryError(f"Kubernetes operation {action!r} is not a read-only verb and resource")
    return verb, group, name


def kubernetes_cluster_role(metas: Iterable[CheckMeta], name: str = "hipaacheck-read", *,
                            include_secrets: bool = False) -> str:
    """
    A ClusterRole granting only the declared get and list verbs; `secrets` only on request.
    """
    rules: dict[tuple[str, str], set[str]] = defaultdict(set)
    for action in _required(_actions(metas, System.KUBERNETES), System.KUBERNETES):
        verb, group, resource = _split_k8s(action)
        if resource in SENSITIVE_RESOURCES and not include_secrets:
            continue
        rules[(group, resource)].add(verb)
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "hipaacheck"}},
        "rules": [{"apiGroups": [group], "resources": [resource], "verbs": sorted(verbs)}
                  for (group, resource), verbs in sorted(rules.items())],
    }
    return yaml.safe_dump(role, sort_keys=False)


def postgres_role_sql(metas: Iterable[CheckMeta], role: str = "hipaacheck") -> str:
    """SQL that creates a read-only monitoring role for the declared catalog reads."""
    views = _required(_actions(metas, System.POSTGRES), System.POSTGRES)
    lines = [
        f"-- Read-only monitoring role for hipaacheck. Catalog reads used: {', '.join(views)}",
        f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT;",
        f"ALTER ROLE {role} SET default_transaction_read_only = on;",
        f"GRANT pg_read_all_settings TO {role};",
        f"GRANT pg_monitor TO {role};",
        f"GRANT SELECT ON pg_catalog.pg_hba_file_rules TO {role};",
        f"GRANT EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() TO {role};",
        f"-- Set its password outside any script kept in version control:  \\password {role}",
    ]
    return "\n".join(lines) + "\n"
