"""
Can the application's IAM role change the audit trail? Asked of IAM's policy simulator where
the scan may call it, else answered by reading the role's policies and the resource's policy.

`role_decisions` is the one entry point: it tries `iam:SimulatePrincipalPolicy` (with the
resource's policy included), and when that is denied or unavailable reads the role (its
permissions boundary), its attached and inline policies, and evaluates them here together with
the resource policy. Either way the result says which method was used.

The local evaluator is deliberately conservative about what matters for an audit trail:

- an Allow counts when its resource pattern overlaps the resource at all (a right to delete
  some of the audit objects is a right to rewrite the trail);
- a Deny counts only when it covers the whole resource and carries no condition;
- a statement with a condition makes the answer `conditional` (UNVERIFIED downstream), never
  allowed or denied, and names the condition keys;
- service control policies, session policies and resource control policies are not visible to
  an account-level read and are not evaluated; the evidence says so.
"""

from __future__ import annotations

import fnmatch
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from hipaacheck.check import CheckContext
from hipaacheck.clients.aws import AwsSession, classify_error, error_code, paginate
from hipaacheck.config import AwsAccountConfig
from hipaacheck.model import Fact, Operation, System, Unknown, UnknownReason

logger = logging.getLogger(__name__)

Decision = Literal["allowed", "denied", "conditional"]
Method = Literal["iam:SimulatePrincipalPolicy", "policy analysis"]

SIMULATE: Method = "iam:SimulatePrincipalPolicy"
ANALYSIS: Method = "policy analysis"
NOT_EVALUATED = "service control, session and resource control policies"
"""What neither method sees from inside the account (the simulator covers SCPs only when the
account is an organization's and the caller may read them)."""

ROLE_READS = ("iam:GetRole", "iam:ListAttachedRolePolicies", "iam:GetPolicy",
              "iam:GetPolicyVersion", "iam:ListRolePolicies", "iam:GetRolePolicy")
ROLE_OPERATIONS = (
    Operation(System.AWS, SIMULATE, "ask IAM whether the application role may change the trail"),
    *(Operation(System.AWS, action, "read the application role's policies when the "
                "simulator cannot be used") for action in ROLE_READS),
)


def application_role(account: AwsAccountConfig) -> Fact[str]:
    """The inventory's `application_role_arn`, or why there is none."""
    arn = getattr(account, "application_role_arn", None)
    if isinstance(arn, str) and arn.startswith("arn:") and ":role/" in arn:
        return arn
    if arn:
        return Unknown(UnknownReason.UNPARSEABLE, "the configured application role is not an "
                       "IAM role ARN")
    return Unknown(UnknownReason.NOT_VISIBLE, "no application IAM role is configured",
                   "`application_role_arn` in this AWS account of the inventory")


# --- policy documents --------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """One policy statement, normalised: every field a tuple, conditions as their key names."""

    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    principals: tuple[str, ...] | None
    """AWS principals (`*`, ARNs, account ids); None when the statement has no Principal (an
    identity policy). Service and federated principals are kept as `service:...`."""
    not_principals: tuple[str, ...] | None
    condition_keys: tuple[str, ...]


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _principals(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if value == "*":
        return ("*",)
    if not isinstance(value, Mapping):
        return _strings(value)
    found: list[str] = []
    for kind, names in value.items():
        prefix = "" if kind == "AWS" else f"{str(kind).lower()}:"
        found += [prefix + name for name in _strings(names)]
    return tuple(found)


def parse_policy(document: Any) -> Fact[tuple[Statement, ...]]:
    """The statements of a policy document (JSON text, URL-encoded JSON, or already parsed)."""
    if isinstance(document, str):
        text = unquote(document) if document.lstrip().startswith("%7B") else document
        try:
            document = json.loads(text)
        except ValueError:
            return Unknown(UnknownReason.UNPARSEABLE, "a policy document is not valid JSON")
    if not isinstance(document, Mapping):
        return Unknown(UnknownReason.UNPARSEABLE, "a policy document is not a JSON object")
    raw = document.get("Statement", [])
    raw = [raw] if isinstance(raw, Mapping) else raw
    try:
        return tuple(Statement(
            effect=str(s.get("Effect", "")), actions=_strings(s.get("Action")),
            not_actions=_strings(s.get("NotAction")), resources=_strings(s.get("Resource")),
            not_resources=_strings(s.get("NotResource")),
            principals=_principals(s.get("Principal")),
            not_principals=_principals(s.get("NotPrincipal")),
            condition_keys=tuple(sorted({key for op in (s.get("Condition") or {}).values()
                                         for key in op})))
            for s in raw)
    except (AttributeError, TypeError):
        return Unknown(UnknownReason.UNPARSEABLE, "a policy statement has an unexpected shape")


# --- matching ----------------------------------------------------------------------------------


def _glob(pattern: str, value: str, *, case: bool) -> bool:
    if not case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def action_matches(statement: Statement, action: str) -> bool:
    """Whether the statement's Action (or NotAction) covers `action` (`s3:DeleteObject`)."""
    if statement.not_actions:
        return not any(_glob(p, action, case=False) for p in statement.not_actions)
    return any(_glob(p, action, case=False) for p in statement.actions)


def resource_overlaps(pattern: str, resource: str) -> bool:
    """
    Whether a resource pattern can match some resource that `resource` stands for. `resource`
    may end in `/*` (every object of a bucket): then any pattern inside that prefix overlaps.
    """
    if _glob(pattern, resource, case=True):
        return True
    if resource.endswith("/*"):
        prefix = resource[:-1]
        if pattern.startswith(prefix):
            return True
        head = pattern.split("/", 1)[0]
        return "/" in pattern and _glob(head, prefix[:-1], case=True)
    return False


def resource_covers(pattern: str, resource: str) -> bool:
    """Whether a resource pattern matches all of `resource` (its `/*` taken literally)."""
    return _glob(pattern, resource, case=True)


def _resource_applies(statement: Statement, resource: str, *, allow: bool) -> bool:
    if statement.not_resources:
        # NotResource applies to everything but what it names. An Allow still reaches part of
        # the resource unless the exclusion covers all of it; a Deny covers all of it only if
        # the exclusion touches none of it.
        if allow:
            return not any(resource_covers(p, resource) for p in statement.not_resources)
        return not any(resource_overlaps(p, resource) for p in statement.not_resources)
    test = resource_overlaps if allow else resource_covers
    return any(test(p, resource) for p in statement.resources)


def principal_matches(statement: Statement, role_arn: str) -> bool:
    """
    Whether a resource policy statement applies to the role: `*`, the role's ARN, or one of its
    sessions; a NotPrincipal statement applies unless it names the role.
    """
    account = role_arn.split(":")[4]
    role_name = role_arn.rsplit("/", 1)[-1]
    session = f"arn:aws:sts::{account}:assumed-role/{role_name}/x"

    def names_role(principals: Iterable[str]) -> bool:
        return any(p == "*" or p == role_arn or _glob(p, role_arn, case=True)
                   or _glob(p, session, case=True) for p in principals)

    if statement.not_principals is not None:
        return not names_role(statement.not_principals)
    return statement.principals is not None and names_role(statement.principals)


def decide(action: str, resource: str, identity: Sequence[Statement],
           resource_policy: Sequence[Statement], role_arn: str,
           boundary: Sequence[Statement] | None = None) -> tuple[Decision, tuple[str, ...]]:
    """
    The evaluator's decision for the role doing `action` on `resource`, and the condition keys
    that made it `conditional`.
    """
    applicable = [s for s in identity if action_matches(s, action)]
    applicable += [s for s in resource_policy
                   if action_matches(s, action) and principal_matches(s, role_arn)]
    denies = [s for s in applicable if s.effect == "Deny"
              and _resource_applies(s, resource, allow=False)]
    if any(not s.condition_keys for s in denies):
        return "denied", ()
    allows = [s for s in applicable if s.effect == "Allow"
              and _resource_applies(s, resource, allow=True)]
    keys = tuple(sorted({k for s in denies + allows for k in s.condition_keys}))
    if not allows:
        return "denied", ()
    if boundary is not None:
        limited, boundary_keys = decide(action, resource, boundary, (), role_arn)
        if limited == "denied":
            return "denied", ()
        keys = tuple(sorted(set(keys) | set(boundary_keys)))
        if limited == "conditional":
            return "conditional", keys
    if denies or all(s.condition_keys for s in allows):
        return "conditional", keys
    return "allowed", ()


# --- reading the role --------------------------------------------------------------------------


@dataclass(frozen=True)
class RolePolicies:
    """The role's identity statements and its permissions boundary (None when it has none)."""

    identity: tuple[Statement, ...]
    boundary: tuple[Statement, ...] | None
    policy_count: int


def _iam(session: AwsSession, account: AwsAccountConfig) -> Any:
    return session.client("iam", account.regions[0])


def _managed_statements(iam: Any, arn: str) -> Fact[tuple[Statement, ...]]:
    try:
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
        return classify_error(exc, "iam:GetPolicy")
    try:
        document = iam.get_policy_version(PolicyArn=arn, VersionId=version)
    except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
        return classify_error(exc, "iam:GetPolicyVersion")
    return parse_policy(document["PolicyVersion"]["Document"])


def _read_role(session: AwsSession, account: AwsAccountConfig,
               role_arn: str) -> Fact[RolePolicies]:
    """Every policy statement that applies to the role, or why it could not be read."""
    iam, name = _iam(session, account), role_arn.rsplit("/", 1)[-1]
    step = "iam:GetRole"
    try:
        role = iam.get_role(RoleName=name)["Role"]
        step = "iam:ListAttachedRolePolicies"
        attached = paginate(iam, "list_attached_role_policies", "AttachedPolicies",
                            RoleName=name)
        step = "iam:ListRolePolicies"
        inline_names = paginate(iam, "list_role_policies", "PolicyNames", RoleName=name)
        step = "iam:GetRolePolicy"
        inline = [iam.get_role_policy(RoleName=name, PolicyName=n)["PolicyDocument"]
                  for n in inline_names]
    except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
        if error_code(exc) == "NoSuchEntity":
            return Unknown(UnknownReason.NOT_VISIBLE, "the application role was not found in "
                           "this account", "the application role in the scanned account")
        return classify_error(exc, step)
    statements: list[Statement] = []
    for document in inline:
        parsed = parse_policy(document)
        if isinstance(parsed, Unknown):
            return parsed
        statements += parsed
    for policy in attached:
        parsed = _managed_statements(iam, policy["PolicyArn"])
        if isinstance(parsed, Unknown):
            return parsed
        statements += parsed
    boundary_arn = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    boundary = _managed_statements(iam, boundary_arn) if boundary_arn else None
    if isinstance(boundary, Unknown):
        return boundary
    return RolePolicies(tuple(statements), boundary, len(inline) + len(attached))


def role_policies(ctx: CheckContext, session: AwsSession, account: AwsAccountConfig,
                  role_arn: str) -> Fact[RolePolicies]:
    """The role's policies, read once per scan."""
    return ctx.memo.get(("aws.iam.role_policies", account.name, role_arn),
                        lambda: _read_role(session, account, role_arn))


# --- the decision ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoleDecisions:
    """What the application role may do to one resource, and how that was established."""

    decisions: Mapping[str, Decision]
    """IAM action to decision."""
    method: Method
    condition_keys: tuple[str, ...] = ()
    simulation_unavailable: str | None = None
    """Why the simulator was not used, when it was not."""


@dataclass(frozen=True)
class Ask:
    """One question: may the role do `action` on `resource`?"""

    action: str
    resource: str


def _simulate(session: AwsSession, account: AwsAccountConfig, role_arn: str,
              asks: Sequence[Ask], resource_policy: str | None) -> Fact[RoleDecisions] | str:
    """The simulator's answer, or a string saying why it could not be used."""
    kwargs: dict[str, Any] = {
        "PolicySourceArn": role_arn, "ActionNames": sorted({a.action for a in asks}),
        "ResourceArns": sorted({a.resource for a in asks})}
    if resource_policy:
        kwargs["ResourcePolicy"] = resource_policy
    try:
        results = paginate(_iam(session, account), "simulate_principal_policy",
                           "EvaluationResults", **kwargs)
    except ClientError as exc:
        return f"{SIMULATE} failed ({error_code(exc) or 'error'})"
    except ResponseParserError:
        # An AWS-compatible endpoint (moto, LocalStack) that lacks the operation answers 500
        # with a page botocore cannot parse.
        return f"{SIMULATE} is not implemented by the endpoint"
    except BotoCoreError as exc:
        return f"{SIMULATE} failed ({type(exc).__name__})"
    table = {(str(r.get("EvalActionName")), str(r.get("EvalResourceName"))):
             str(r.get("EvalDecision")) for r in results}
    decisions: dict[str, Decision] = {}
    missing: set[str] = set()
    for result in results:
        missing |= set(result.get("MissingContextValues") or ())
    for ask in asks:
        raw = table.get((ask.action, ask.resource))
        if raw is None:
            return Unknown(UnknownReason.UNPARSEABLE, f"the simulator did not answer for "
                           f"{ask.action}")
        decisions[ask.action] = "allowed" if raw == "allowed" else "denied"
    if missing and any(d == "allowed" for d in decisions.values()):
        return RoleDecisions(decisions, SIMULATE, tuple(sorted(missing)))
    return RoleDecisions(decisions, SIMULATE)


def role_decisions(ctx: CheckContext, session: AwsSession, account: AwsAccountConfig,
                   role_arn: str, asks: Sequence[Ask],
                   resource_policy: str | None) -> Fact[RoleDecisions]:
    """
    May the role do each asked action? The simulator first; on denial or unavailability, the
    local evaluator over the role's policies and `resource_policy` (JSON text or None).
    """
    simulator: dict[str, str] = ctx.memo.get(("aws.iam.simulator", account.name), dict)
    simulated = simulator.get("unavailable") or _simulate(session, account, role_arn, asks,
                                                          resource_policy)
    if not isinstance(simulated, str):
        return simulated
    if "unavailable" not in simulator:
        # Asked once per scan: a denied or missing simulator is not retried for every resource.
        simulator["unavailable"] = simulated
        logger.info("falling back to policy analysis: %s", simulated)
    policies = role_policies(ctx, session, account, role_arn)
    if isinstance(policies, Unknown):
        return Unknown(policies.reason, f"{simulated}, and the role's policies could not be "
                       f"read: {policies.detail}", policies.needs or SIMULATE)
    statements = parse_policy(resource_policy) if resource_policy else ()
    if isinstance(statements, Unknown):
        return statements
    decisions: dict[str, Decision] = {}
    keys: set[str] = set()
    for ask in asks:
        decisions[ask.action], found = decide(ask.action, ask.resource, policies.identity,
                                              statements, role_arn, policies.boundary)
        keys |= set(found)
    return RoleDecisions(decisions, ANALYSIS, tuple(sorted(keys)), simulated)
