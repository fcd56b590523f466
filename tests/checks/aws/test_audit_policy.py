"""
The local IAM policy evaluator behind the audit checks' "policy analysis" method: parsing,
matching, and the conservative rules (an Allow over part of a resource counts, a Deny only
over all of it, a condition makes the answer conditional).
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from hipaacheck.checks.aws.audit_policy import (
    Statement,
    application_role,
    decide,
    parse_policy,
    principal_matches,
    resource_covers,
    resource_overlaps,
)
from hipaacheck.config import AwsAccountConfig
from hipaacheck.model import Unknown, UnknownReason

ROLE = "arn:aws:iam::111122223333:role/clinic-app"
OBJECTS = "arn:aws:s3:::audit-bucket/*"


def statements(*raw: dict[str, object]) -> tuple[Statement, ...]:
    parsed = parse_policy({"Version": "2012-10-17", "Statement": list(raw)})
    assert not isinstance(parsed, Unknown)
    return parsed


def allow(action: object, resource: object = "*", **extra: object) -> dict[str, object]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: object, resource: object = "*", **extra: object) -> dict[str, object]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def test_parse_accepts_text_url_encoded_and_single_statements() -> None:
    document = {"Statement": allow("s3:*")}
    for form in (document, json.dumps(document), quote(json.dumps(document))):
        parsed = parse_policy(form)
        assert not isinstance(parsed, Unknown) and parsed[0].actions == ("s3:*",)


@pytest.mark.parametrize("bad", ["not json", "[1, 2]", {"Statement": ["x"]}])
def test_unparseable_documents_are_unknown(bad: object) -> None:
    parsed = parse_policy(bad)
    assert isinstance(parsed, Unknown) and parsed.reason is UnknownReason.UNPARSEABLE


@pytest.mark.parametrize(("identity", "decision"), [
    ((allow("s3:DeleteObject", OBJECTS),), "allowed"),
    ((allow("s3:*"),), "allowed"),
    ((allow("S3:delete*", "arn:aws:s3:::audit-*"),), "allowed"),
    ((allow("s3:DeleteObject", "arn:aws:s3:::audit-bucket/AWSLogs/*"),), "allowed"),
    ((allow("s3:GetObject", OBJECTS),), "denied"),
    ((allow("s3:DeleteObject", "arn:aws:s3:::other/*"),), "denied"),
    ((allow("s3:*"), deny("s3:DeleteObject", OBJECTS)), "denied"),
    ((allow("s3:*"), deny("s3:Delete*")), "denied"),
    ((allow("s3:*"), deny("s3:DeleteObject", "arn:aws:s3:::audit-bucket/AWSLogs/*")), "allowed"),
    ((allow("s3:*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),), "conditional"),
    ((allow("s3:*"), deny("s3:*", Condition={"Bool": {"aws:SecureTransport": "false"}})),
     "conditional"),
    (({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},), "allowed"),
    (({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"},), "denied"),
    (({"Effect": "Allow", "Action": "s3:*", "NotResource": OBJECTS},), "denied"),
    (({"Effect": "Allow", "Action": "s3:*",
       "NotResource": "arn:aws:s3:::audit-bucket/keep/*"},), "allowed"),
    ((allow("s3:*"), {"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::x/*"}),
     "denied"),
    ((allow("s3:*"), {"Effect": "Deny", "Action": "s3:*",
                      "NotResource": "arn:aws:s3:::audit-bucket/keep/*"}), "allowed"),
    ((), "denied"),
])
def test_identity_policies(identity: tuple[dict[str, object], ...], decision: str) -> None:
    assert decide("s3:DeleteObject", OBJECTS, statements(*identity), (), ROLE)[0] == decision


def test_condition_keys_are_named() -> None:
    conditional = statements(allow("s3:*", Condition={
        "StringEquals": {"aws:PrincipalTag/team": "x"}, "Bool": {"aws:ViaAWSService": "true"}}))
    assert decide("s3:DeleteObject", OBJECTS, conditional, (), ROLE) == (
        "conditional", ("aws:PrincipalTag/team", "aws:ViaAWSService"))


@pytest.mark.parametrize(("bucket_policy", "decision"), [
    ((allow("s3:DeleteObject", OBJECTS, Principal={"AWS": ROLE}),), "allowed"),
    ((allow("s3:DeleteObject", OBJECTS, Principal="*"),), "allowed"),
    ((allow("s3:DeleteObject", OBJECTS,
            Principal={"AWS": "arn:aws:iam::111122223333:role/other"}),), "denied"),
    ((allow("s3:DeleteObject", OBJECTS, Principal={"Service": "cloudtrail.amazonaws.com"}),),
     "denied"),
])
def test_resource_policy_grants_by_principal(bucket_policy: tuple[dict[str, object], ...],
                                             decision: str) -> None:
    assert decide("s3:DeleteObject", OBJECTS, (), statements(*bucket_policy), ROLE)[0] == decision


def test_resource_policy_deny_to_everyone_overrides_identity_allow() -> None:
    bucket = statements(deny("s3:DeleteObject", OBJECTS, Principal="*"))
    assert decide("s3:DeleteObject", OBJECTS, statements(allow("s3:*")), bucket, ROLE)[0] == \
        "denied"
    spared = statements(deny("s3:DeleteObject", OBJECTS, NotPrincipal={"AWS": ROLE}))
    assert decide("s3:DeleteObject", OBJECTS, statements(allow("s3:*")), spared, ROLE)[0] == \
        "allowed"


def test_permissions_boundary_limits_identity_allows() -> None:
    identity = statements(allow("s3:*"))
    boundary = statements(allow("s3:GetObject"))
    assert decide("s3:DeleteObject", OBJECTS, identity, (), ROLE, boundary)[0] == "denied"
    assert decide("s3:DeleteObject", OBJECTS, identity, (), ROLE, statements(allow("*")))[0] == \
        "allowed"


def test_matching_helpers() -> None:
    assert resource_overlaps("arn:aws:s3:::audit-bucket/AWSLogs/*", OBJECTS)
    assert resource_overlaps("arn:aws:s3:::audit-*/x", OBJECTS)
    assert not resource_overlaps("arn:aws:s3:::other/*", OBJECTS)
    assert resource_covers("arn:aws:s3:::*", OBJECTS)
    assert not resource_covers("arn:aws:s3:::audit-bucket/AWSLogs/*", OBJECTS)
    session = statements(allow("s3:*", Principal={
        "AWS": "arn:aws:sts::111122223333:assumed-role/clinic-app/*"}))[0]
    assert principal_matches(session, ROLE)


def test_application_role_is_read_defensively() -> None:
    plain = AwsAccountConfig(name="a", regions=["us-east-1"])
    assert isinstance(application_role(plain), Unknown)

    class WithRole(AwsAccountConfig):
        application_role_arn: str | None = None

    assert application_role(WithRole(name="a", regions=["us-east-1"],
                                      application_role_arn=ROLE)) == ROLE
    bad = application_role(WithRole(name="a", regions=["us-east-1"],
                                    application_role_arn="clinic-app"))
    assert isinstance(bad, Unknown) and bad.reason is UnknownReason.UNPARSEABLE
