"""
Transmission-security checks of AWS, judged on hand-built observations: PASS, FAIL and an
UNVERIFIED finding for each fact that can be unknown, plus the settings-table machinery.
"""

from __future__ import annotations

from typing import Any

import pytest

from hipaacheck.check import Policy
from hipaacheck.checks.aws.transit import (
    CACHE_SETTINGS,
    CHECKS,
    DOMAIN_SETTINGS,
    PROBE_NOTE,
    SEARCH_SETTINGS,
    VIEWER_SETTINGS,
    ApiGatewayDomainTls,
    Cache,
    CacheBehavior,
    CloudFrontOrigin,
    CloudFrontOriginTls,
    CloudFrontViewerTls,
    CustomDomain,
    DbEndpoint,
    Distribution,
    ElastiCacheTransitEncryption,
    ElbListener,
    ElbPlaintextListeners,
    ElbTargetProtocol,
    ElbTlsPolicy,
    LoadBalancer,
    Observed,
    OpenSearchTransit,
    RdsTransportTls,
    Regional,
    RegionFacts,
    SearchDomain,
    Setting,
    TargetHop,
    judge_settings,
    read_settings,
    settings,
)
from hipaacheck.model import Family, Finding, Standard, Status, Target, TargetKind, Unknown
from hipaacheck.model import UnknownReason as R
from hipaacheck.registry import Registry

TARGET = Target(TargetKind.AWS, "aws:test", "test")
POLICY = Policy()
DENIED = Unknown(R.ACCESS_DENIED, "access to x was denied", needs="elasticloadbalancing:X")
REGION = "us-east-1"


def regional(*items: Any) -> Regional[Any]:
    return Regional((RegionFacts(REGION, tuple(items)),))


def run(check: Any, obs: Any) -> list[Finding]:
    return list(check.evaluate(obs, TARGET, POLICY))


def one(check: Any, obs: Any) -> Finding:
    [finding] = run(check, obs)
    assert finding.check_id == check.meta.id
    return finding


# --- metadata ---------------------------------------------------------------------------------

def test_every_check_is_transmission_security_with_read_only_operations() -> None:
    registry = Registry.from_checks(kind() for kind in CHECKS)
    assert len(registry.checks) == len(CHECKS)
    for check in registry.checks.values():
        meta = check.meta
        assert (meta.family, meta.standard) == (Family.TRANSMISSION, Standard.TRANSMISSION)
        assert meta.citations == ("164.312(e)(1)", "164.312(e)(2)(i)", "164.312(e)(2)(ii)")
        for op in meta.operations:
            action = op.action.split(":")[1]
            assert action.startswith(("Describe", "List", "Get")) or op.action == "apigateway:GET"


# --- regions ----------------------------------------------------------------------------------

def test_unknown_region_list_and_failed_region_listing_are_unverified() -> None:
    [regions] = run(ElbTlsPolicy(), Regional((), DENIED))
    [region] = run(ElbTlsPolicy(), Regional((RegionFacts(REGION, DENIED),)))

    assert (regions.resource, regions.status) == ("aws:regions", Status.UNVERIFIED)
    assert (region.resource, region.status, region.needs) == (
        f"elb:{REGION}", Status.UNVERIFIED, "elasticloadbalancing:X")


def test_an_empty_listing_passes_with_a_count() -> None:
    finding = one(OpenSearchTransit(), Regional((RegionFacts(REGION, ()),)))
    assert (finding.status, finding.evidence["count"]) == (Status.PASS, 0)


# --- load balancers ---------------------------------------------------------------------------

def listener(protocol: str = "HTTPS", **kw: Any) -> ElbListener:
    fields: dict[str, Any] = {
        "resource": f"arn:listener/{protocol}", "load_balancer": "portal", "kind": "application",
        "scheme": "internet-facing", "endpoint": "portal.elb.amazonaws.com:443",
        "protocol": protocol}
    fields.update(kw)
    return ElbListener(**fields)


def lb(*listeners: ElbListener) -> LoadBalancer:
    return LoadBalancer("arn:lb/portal", "portal", "application", tuple(listeners))


@pytest.mark.parametrize(("protocols", "expected"), [
    (("TLSv1.3", "TLSv1.2"), Status.PASS),
    (("TLSv1.2",), Status.WARN),
    (("TLSv1.2", "TLSv1.1", "TLSv1"), Status.FAIL),
    (("SSLv3", "TLSv1.2"), Status.FAIL),
])
def test_tls_policy_verdicts(protocols: tuple[str, ...], expected: Status) -> None:
    finding = one(ElbTlsPolicy(), regional(lb(listener(policy="P", protocols=protocols))))

    assert finding.status == expected
    assert finding.evidence["probe"] == PROBE_NOTE
    assert finding.evidence["endpoints"] == ("portal.elb.amazonaws.com:443",)


@pytest.mark.parametrize("unknown", [
    DENIED, Unknown(R.NOT_VISIBLE, "no SSL negotiation policy is attached to the listener")])
def test_unresolved_policy_is_unverified(unknown: Unknown) -> None:
    finding = one(ElbTlsPolicy(), regional(lb(listener(policy="P", protocols=unknown))))
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED, unknown.reason)


def test_unknown_listeners_are_unverified_and_plaintext_only_lbs_pass_the_policy_check() -> None:
    denied = LoadBalancer("arn:lb/x", "x", "application", DENIED)
    [unknown] = run(ElbTlsPolicy(), regional(denied))
    [none] = run(ElbTlsPolicy(), regional(lb(listener("HTTP", redirects_to_https=True))))

    assert (unknown.resource, unknown.status) == ("arn:lb/x", Status.UNVERIFIED)
    assert (none.resource, none.status) == (f"elb:{REGION}", Status.PASS)


@pytest.mark.parametrize(("item", "expected", "reason"), [
    (listener("HTTP", redirects_to_https=True), Status.PASS, None),
    (listener("HTTP", redirects_to_https=False), Status.FAIL, None),
    (listener("HTTP", redirects_to_https=DENIED), Status.UNVERIFIED, R.ACCESS_DENIED),
    (listener("HTTP", kind="classic"), Status.FAIL, None),
    (listener("TCP"), Status.UNVERIFIED, R.NOT_VISIBLE),
])
def test_plaintext_listener_verdicts(item: ElbListener, expected: Status,
                                     reason: R | None) -> None:
    finding = one(ElbPlaintextListeners(), regional(lb(item)))
    assert (finding.status, finding.unknown_reason) == (expected, reason)
    assert finding.evidence["probe"] == PROBE_NOTE


def test_geneve_listeners_are_not_judged() -> None:
    [finding] = run(ElbPlaintextListeners(), regional(lb(listener("GENEVE"))))
    assert (finding.resource, finding.status) == (f"elb:{REGION}", Status.PASS)


def hop(protocol: str, fed: tuple[str, ...] = (), target_type: str = "ip") -> TargetHop:
    return TargetHop(f"arn:tg/{protocol}", "tg", protocol, target_type, fed, ("portal",))


@pytest.mark.parametrize(("item", "expected"), [
    (hop("HTTPS"), Status.PASS),
    (hop("TLS"), Status.PASS),
    (hop("HTTP"), Status.FAIL),
    (hop("TCP", fed=("db.elb:5432",)), Status.FAIL),
    (hop("TCP"), Status.UNVERIFIED),
])
def test_target_protocol_verdicts(item: TargetHop, expected: Status) -> None:
    assert one(ElbTargetProtocol(), regional(item)).status == expected


def test_lambda_targets_are_not_judged() -> None:
    [finding] = run(ElbTargetProtocol(), regional(hop("", target_type="lambda")))
    assert finding.resource == f"elb-targets:{REGION}"


# --- the settings machinery -------------------------------------------------------------------

FLAG = Setting("flag", "Flag", ("Options", "Flag"), passing=frozenset({"true"}),
               failing=frozenset({"false"}), default="false", problem="plaintext")
MODE = Setting("mode", "Mode", ("Options", "Mode"), passing=frozenset({"required"}),
               failing=frozenset({"preferred"}), warning=frozenset({"legacy"}),
               only_if=("flag", frozenset({"true"})))
TABLE = settings(FLAG, MODE)


@pytest.mark.parametrize(("raw", "expected"), [
    ({"Options": {"Flag": True, "Mode": "required"}}, Status.PASS),
    ({"Options": {"Flag": True, "Mode": "legacy"}}, Status.WARN),
    ({"Options": {"Flag": True, "Mode": "preferred"}}, Status.FAIL),
    ({"Options": {}}, Status.FAIL),  # the documented default applies: off
    ({"Options": {"Flag": False}}, Status.FAIL),  # the mode does not apply when off
    ({"Options": {"Flag": True}}, Status.UNVERIFIED),  # mode not reported, no default
    ({"Options": {"Flag": True, "Mode": "brand-new"}}, Status.UNVERIFIED),
])
def test_settings_table_verdicts(raw: dict[str, Any], expected: Status) -> None:
    judged = judge_settings(read_settings(raw, TABLE, "DescribeThing"), TABLE)
    assert judged.status == expected


def test_a_defaulted_setting_says_where_its_value_came_from() -> None:
    judged = judge_settings(read_settings({}, (FLAG,), "DescribeThing"), (FLAG,))
    assert judged.evidence == {"flag": "false", "flag_source": "AWS default (not reported)"}


def test_settings_tables_refuse_duplicates_and_dangling_conditions() -> None:
    with pytest.raises(ValueError):
        settings(FLAG, FLAG)
    with pytest.raises(ValueError):
        settings(MODE)


def test_protocol_lists() -> None:
    version = Setting("v", "tls_version", ("v",), passing=frozenset(), protocol_list=True)
    assert version.verdict("TLSv1.2,TLSv1.3") == "pass"
    assert version.verdict("TLSv1.1, TLSv1.2") == "fail"
    assert version.verdict("") is None


# --- CloudFront -------------------------------------------------------------------------------

def distribution(certificate: dict[str, Any], viewer: str = "redirect-to-https",
                 origin: CloudFrontOrigin | None = None) -> Distribution:
    origin = origin or CloudFrontOrigin("app", "app.example", "custom", "https-only",
                                        ("TLSv1.2",))
    return Distribution(
        "arn:cloudfront::1:distribution/E1", "d1.cloudfront.net", ("cdn.example",),
        read_settings({"ViewerCertificate": certificate}, VIEWER_SETTINGS, "ListDistributions"),
        (CacheBehavior("default", "app", viewer),), (origin,))


OWN_CERT = {"CloudFrontDefaultCertificate": False, "MinimumProtocolVersion": "TLSv1.2_2021"}


@pytest.mark.parametrize(("certificate", "viewer", "expected"), [
    (OWN_CERT, "redirect-to-https", Status.PASS),
    (OWN_CERT, "allow-all", Status.FAIL),
    ({"CloudFrontDefaultCertificate": True, "MinimumProtocolVersion": "TLSv1"},
     "https-only", Status.FAIL),
    ({"CloudFrontDefaultCertificate": False, "MinimumProtocolVersion": "TLSv1_2016"},
     "https-only", Status.FAIL),
    ({"CloudFrontDefaultCertificate": False}, "https-only", Status.UNVERIFIED),
    ({"CloudFrontDefaultCertificate": False, "MinimumProtocolVersion": "TLSv9"},
     "https-only", Status.UNVERIFIED),
])
def test_viewer_verdicts(certificate: dict[str, Any], viewer: str, expected: Status) -> None:
    finding = one(CloudFrontViewerTls(), (distribution(certificate, viewer),))
    assert finding.status == expected
    assert finding.evidence["endpoints"] == ("d1.cloudfront.net:443", "cdn.example:443")


def test_unlisted_distributions_are_unverified_and_none_pass() -> None:
    assert one(CloudFrontViewerTls(), DENIED).status == Status.UNVERIFIED
    assert one(CloudFrontOriginTls(), ()).status == Status.PASS


@pytest.mark.parametrize(("origin", "viewer", "expected"), [
    (CloudFrontOrigin("app", "a", "custom", "https-only", ("TLSv1.2",)), "allow-all",
     Status.PASS),
    (CloudFrontOrigin("app", "a", "custom", "http-only", None), "https-only", Status.FAIL),
    (CloudFrontOrigin("app", "a", "custom", "https-only", ("TLSv1", "TLSv1.2")), "https-only",
     Status.FAIL),
    (CloudFrontOrigin("app", "a", "custom", "match-viewer", ("TLSv1.2",)), "allow-all",
     Status.FAIL),
    (CloudFrontOrigin("app", "a", "custom", "match-viewer", ("TLSv1.2",)), "https-only",
     Status.PASS),
    (CloudFrontOrigin("app", "a", "s3"), "allow-all", Status.FAIL),
    (CloudFrontOrigin("app", "a", "s3"), "redirect-to-https", Status.PASS),
    (CloudFrontOrigin("app", "a", "vpc"), "https-only", Status.UNVERIFIED),
    (CloudFrontOrigin("app", "a", "unknown"), "https-only", Status.UNVERIFIED),
])
def test_origin_verdicts(origin: CloudFrontOrigin, viewer: str, expected: Status) -> None:
    finding = one(CloudFrontOriginTls(), (distribution(OWN_CERT, viewer, origin),))
    assert finding.status == expected


# --- API Gateway ------------------------------------------------------------------------------

def domain(*policies: object) -> CustomDomain:
    configs = tuple(("REGIONAL", read_settings({"securityPolicy": p}, DOMAIN_SETTINGS,
                                               "GetDomainNames")) for p in policies)
    return CustomDomain("arn:aws:apigateway:us-east-1::/domainnames/api.example", "api.example",
                        "REST", configs)


@pytest.mark.parametrize(("policies", "expected"), [
    (("TLS_1_2",), Status.PASS),
    (("SecurityPolicy_TLS13_1_3_2025_09",), Status.PASS),
    (("TLS_1_0",), Status.FAIL),
    (("TLS_1_2", "TLS_1_0"), Status.FAIL),
    ((None,), Status.UNVERIFIED),
    (("TLS_9_9",), Status.UNVERIFIED),
    ((), Status.UNVERIFIED),
])
def test_custom_domain_verdicts(policies: tuple[object, ...], expected: Status) -> None:
    finding = one(ApiGatewayDomainTls(), regional(domain(*policies)))
    assert finding.status == expected
    assert finding.evidence["endpoints"] == ("api.example:443",)


# --- RDS --------------------------------------------------------------------------------------

def database(engine: str = "postgres", **parameters: Observed) -> DbEndpoint:
    return DbEndpoint("arn:aws:rds:us-east-1:1:db:records", "records", "instance", engine, "16.3",
                      ("records.rds.amazonaws.com:5432",), "pg-strict", "in-sync", parameters)


STRICT_PG = {"force_ssl": Observed("1", "parameter group"),
             "ssl_min_protocol_version": Observed("TLSv1.2", "engine default")}


@pytest.mark.parametrize(("engine", "parameters", "expected"), [
    ("postgres", STRICT_PG, Status.PASS),
    ("postgres", {**STRICT_PG, "force_ssl": Observed("0", "engine default")}, Status.FAIL),
    ("postgres", {**STRICT_PG, "ssl_min_protocol_version": Observed("TLSv1.1")}, Status.FAIL),
    ("postgres", {**STRICT_PG, "force_ssl": Observed(DENIED)}, Status.UNVERIFIED),
    ("aurora-mysql", {"require_secure_transport": Observed("ON"),
                      "tls_version": Observed("TLSv1.2,TLSv1.3")}, Status.PASS),
    ("mysql", {"require_secure_transport": Observed("OFF", "engine built-in default"),
               "tls_version": Observed("TLSv1.2")}, Status.FAIL),
    ("sqlserver-se", {"force_ssl": Observed("1"), "tls10": Observed("default"),
                      "tls11": Observed("disabled")}, Status.FAIL),
    ("docdb", {"tls": Observed("enabled")}, Status.PASS),
])
def test_database_verdicts(engine: str, parameters: dict[str, Observed],
                           expected: Status) -> None:
    finding = one(RdsTransportTls(), regional(database(engine, **parameters)))
    assert finding.status == expected
    assert finding.evidence["endpoints"] == ("records.rds.amazonaws.com:5432",)


def test_a_denied_parameter_names_the_permission() -> None:
    finding = one(RdsTransportTls(), regional(database(**{**STRICT_PG,
                                                          "force_ssl": Observed(DENIED)})))
    assert (finding.unknown_reason, finding.needs) == (R.ACCESS_DENIED, "elasticloadbalancing:X")


def test_oracle_is_not_supported_rather_than_passed() -> None:
    finding = one(RdsTransportTls(), regional(database("oracle-ee")))
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED, R.NOT_SUPPORTED)


# --- ElastiCache and OpenSearch ---------------------------------------------------------------

def cache(raw: dict[str, Any]) -> Cache:
    return Cache("arn:aws:elasticache:us-east-1:1:replicationgroup:sessions", "sessions",
                 "replication group", "redis", ("master.sessions.cache.amazonaws.com:6379",),
                 read_settings(raw, CACHE_SETTINGS, "DescribeReplicationGroups"))


@pytest.mark.parametrize(("raw", "expected"), [
    ({"TransitEncryptionEnabled": True, "TransitEncryptionMode": "required"}, Status.PASS),
    ({"TransitEncryptionEnabled": True}, Status.PASS),  # predates the mode: required
    ({"TransitEncryptionEnabled": True, "TransitEncryptionMode": "preferred"}, Status.FAIL),
    ({"TransitEncryptionEnabled": False}, Status.FAIL),
    ({}, Status.FAIL),
    ({"TransitEncryptionEnabled": True, "TransitEncryptionMode": "sometimes"},
     Status.UNVERIFIED),
])
def test_cache_verdicts(raw: dict[str, Any], expected: Status) -> None:
    finding = one(ElastiCacheTransitEncryption(), regional(cache(raw)))
    assert finding.status == expected
    assert finding.evidence["probe"] == PROBE_NOTE


def search(raw: dict[str, Any]) -> SearchDomain:
    return SearchDomain("arn:aws:es:us-east-1:1:domain/notes", "notes", "OpenSearch_2.11",
                        ("vpc-notes.es.amazonaws.com:443",),
                        read_settings(raw, SEARCH_SETTINGS, "DescribeDomains"))


GOOD_SEARCH = {"DomainEndpointOptions": {"EnforceHTTPS": True,
                                         "TLSSecurityPolicy": "Policy-Min-TLS-1-2-PFS-2023-10"},
               "NodeToNodeEncryptionOptions": {"Enabled": True}}


@pytest.mark.parametrize(("raw", "expected"), [
    (GOOD_SEARCH, Status.PASS),
    ({**GOOD_SEARCH, "DomainEndpointOptions": {
        "EnforceHTTPS": False, "TLSSecurityPolicy": "Policy-Min-TLS-1-2-2019-07"}}, Status.FAIL),
    ({**GOOD_SEARCH, "DomainEndpointOptions": {
        "EnforceHTTPS": True, "TLSSecurityPolicy": "Policy-Min-TLS-1-0-2019-07"}}, Status.FAIL),
    ({**GOOD_SEARCH, "NodeToNodeEncryptionOptions": {"Enabled": False}}, Status.FAIL),
    ({**GOOD_SEARCH, "DomainEndpointOptions": {"EnforceHTTPS": True}}, Status.UNVERIFIED),
])
def test_search_domain_verdicts(raw: dict[str, Any], expected: Status) -> None:
    assert one(OpenSearchTransit(), regional(search(raw))).status == expected
