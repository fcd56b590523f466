"""
The endpoints the AWS transmission-security checks offer for live TLS probing, from hand-built
observations: which carry TLS, from where they are reached, how a database is probed, and that
a listing that could not be read offers nothing. (The same against moto is in
test_transit_aws_collect.py.)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from hipaacheck.check import Policy
from hipaacheck.checks.aws import transit as aws
from hipaacheck.model import Endpoint, Target, TargetKind, Unknown, UnknownReason

TARGET = Target(TargetKind.AWS, "aws:clinic", "clinic")
DENIED = Unknown(UnknownReason.ACCESS_DENIED, "denied", needs="x:Describe")
HTTPS = aws.ElbListener("arn:listener/https", "portal", "application", "internet-facing",
                        "portal.elb.amazonaws.com:443", "HTTPS")


def in_region(*items: Any) -> aws.Regional[Any]:
    return aws.Regional((aws.RegionFacts("us-east-1", tuple(items)),
                         aws.RegionFacts("eu-west-1", DENIED)))


def offers(check: Any, obs: Any) -> list[Endpoint]:
    found = list(check.endpoints(obs, TARGET))
    assert all(e.source == TARGET.id for e in found)
    return found


def shape(endpoint: Endpoint) -> tuple[str, int, bool, str]:
    return endpoint.host, endpoint.port, endpoint.tls, endpoint.zone


# --- load balancers ---------------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "expected"), [
    ({}, ("portal.elb.amazonaws.com", 443, True, "external")),
    ({"protocol": "HTTP", "endpoint": "portal.elb.amazonaws.com:80"},
     ("portal.elb.amazonaws.com", 80, False, "external")),
    ({"protocol": "TCP", "kind": "network"}, ("portal.elb.amazonaws.com", 443, True, "external")),
    ({"protocol": "TCP_UDP"}, ("portal.elb.amazonaws.com", 443, True, "external")),
    ({"protocol": "UDP"}, ("portal.elb.amazonaws.com", 443, False, "external")),
    ({"protocol": "TCP", "endpoint": "db.elb.amazonaws.com:5432", "scheme": "internal"},
     ("db.elb.amazonaws.com", 5432, False, "internal")),
    ({"protocol": "TLS", "endpoint": "db.elb.amazonaws.com:5432", "scheme": "internal"},
     ("db.elb.amazonaws.com", 5432, True, "internal")),
    ({"protocol": "SSL", "kind": "classic", "resource": "classic/old:443"},
     ("portal.elb.amazonaws.com", 443, True, "external")),
])
def test_each_listener_is_offered_as_its_protocol_says(changes: dict[str, Any],
                                                       expected: tuple[Any, ...]) -> None:
    listener = replace(HTTPS, **changes)
    lb = aws.LoadBalancer("arn:lb", "portal", "x", (listener,))

    [endpoint] = offers(aws.ElbTlsPolicy(), in_region(lb))

    assert shape(endpoint) == expected
    assert endpoint.origin == listener.resource
    assert endpoint.via == ("classic ELB listener" if listener.kind == "classic"
                            else "ELBv2 listener")


def test_listeners_not_listed_offer_nothing() -> None:
    unlisted = aws.LoadBalancer("arn:lb/a", "a", "application", DENIED)
    listed = aws.LoadBalancer("arn:lb/b", "b", "application",
                              (HTTPS, replace(HTTPS, endpoint="portless.elb.amazonaws.com:")))

    assert [shape(e) for e in offers(aws.ElbTlsPolicy(), in_region(unlisted, listed))] == [
        ("portal.elb.amazonaws.com", 443, True, "external")]
    assert offers(aws.ElbTlsPolicy(), aws.Regional((), DENIED)) == []
    # The plaintext check judges the same observation and offers nothing of its own.
    assert offers(aws.ElbPlaintextListeners(), in_region(listed)) == []


# --- CloudFront -------------------------------------------------------------------------------

def distribution(*origins: aws.CloudFrontOrigin) -> aws.Distribution:
    behavior = aws.CacheBehavior("default", "o", "https-only")
    return aws.Distribution("arn:cloudfront::1:distribution/E1", "d1.cloudfront.net",
                            ("cdn.example",), {}, (behavior,), origins)


def test_the_viewer_side_offers_the_domain_and_aliases() -> None:
    found = offers(aws.CloudFrontViewerTls(), (distribution(),))

    assert [shape(e) for e in found] == [("d1.cloudfront.net", 443, True, "external"),
                                         ("cdn.example", 443, True, "external")]
    assert {(e.via, e.origin) for e in found} == {
        ("CloudFront distribution", "arn:cloudfront::1:distribution/E1")}
    assert offers(aws.CloudFrontViewerTls(), DENIED) == []


@pytest.mark.parametrize(("origin", "expected"), [
    (aws.CloudFrontOrigin("o", "app.example", "custom", "https-only", ("TLSv1.2",), 8080, 8443),
     ("app.example", 8443, True, "external")),
    (aws.CloudFrontOrigin("o", "app.example", "custom", "match-viewer", None),
     ("app.example", 443, True, "external")),
    (aws.CloudFrontOrigin("o", "app.example", "custom", "http-only", None, 8080, 8443),
     ("app.example", 8080, False, "external")),
    (aws.CloudFrontOrigin("o", "assets.s3.amazonaws.com", "s3"),
     ("assets.s3.amazonaws.com", 443, True, "external")),
    (aws.CloudFrontOrigin("o", "internal-alb.elb.amazonaws.com", "vpc"),
     ("internal-alb.elb.amazonaws.com", 443, True, "internal")),
])
def test_origins_are_offered_as_cloudfront_reaches_them(origin: aws.CloudFrontOrigin,
                                                        expected: tuple[Any, ...]) -> None:
    dist = distribution(origin)

    [endpoint] = offers(aws.CloudFrontOriginTls(), (dist,))
    [finding] = aws.CloudFrontOriginTls().evaluate((dist,), TARGET, Policy())

    assert (shape(endpoint), endpoint.via) == (expected, "CloudFront origin")
    assert finding.evidence["endpoints"] == (endpoint.address,)


# --- API Gateway ------------------------------------------------------------------------------

@pytest.mark.parametrize(("types", "zone"), [
    (("PRIVATE",), "internal"),
    (("REGIONAL",), "external"),
    (("EDGE,PRIVATE",), "external"),
    (("REGIONAL", "PRIVATE"), "external"),
    ((), "external"),
])
def test_custom_domains_are_internal_only_when_private(types: tuple[str, ...],
                                                       zone: str) -> None:
    policy = aws.read_settings({"securityPolicy": "TLS_1_2"}, aws.DOMAIN_SETTINGS, "Get")
    configs = tuple((t, policy) for t in types)
    domain = aws.CustomDomain("arn:domainnames/api.example", "api.example", "REST", configs)

    [endpoint] = offers(aws.ApiGatewayDomainTls(), in_region(domain))

    assert (shape(endpoint), endpoint.via) == (("api.example", 443, True, zone),
                                               "API Gateway custom domain")


# --- RDS --------------------------------------------------------------------------------------

def database(engine: str, public: bool = False, **parameters: aws.Observed) -> aws.DbEndpoint:
    addresses = ("records.rds.amazonaws.com:5432", "no-port.rds.amazonaws.com:None")
    return aws.DbEndpoint("arn:aws:rds:us-east-1:1:db:records", "records", "instance", engine,
                          "1", addresses, "group", "in-sync", parameters, public)


@pytest.mark.parametrize(("engine", "starttls", "unprobeable"), [
    ("postgres", "postgres", None),
    ("aurora-postgresql", "postgres", None),
    ("docdb", None, None),
    ("mysql", None, "the prober does not speak mysql's TLS negotiation"),
    ("aurora-mysql", None, "the prober does not speak aurora-mysql's TLS negotiation"),
    ("mariadb", None, "the prober does not speak mariadb's TLS negotiation"),
    ("sqlserver-se", None, "the prober does not speak sqlserver-se's TLS negotiation"),
    ("oracle-ee", None, "the prober does not speak oracle-ee's TLS negotiation"),
])
def test_databases_are_probed_only_where_the_prober_speaks_the_engine(
        engine: str, starttls: str | None, unprobeable: str | None) -> None:
    [endpoint] = offers(aws.RdsTransportTls(), in_region(database(engine)))

    assert shape(endpoint) == ("records.rds.amazonaws.com", 5432, True, "internal")
    assert (endpoint.starttls, endpoint.unprobeable, endpoint.via) == (
        starttls, unprobeable, "RDS instance")


def test_a_public_instance_is_external_and_plaintext_documentdb_is_listed_only() -> None:
    check = aws.RdsTransportTls()
    [public] = offers(check, in_region(database("postgres", public=True)))
    [plain] = offers(check, in_region(database("docdb", tls=aws.Observed("disabled"))))
    [unread] = offers(check, in_region(database("docdb", tls=aws.Observed(DENIED))))

    assert (public.zone, plain.tls, unread.tls) == ("external", False, True)


# --- ElastiCache and OpenSearch ---------------------------------------------------------------

@pytest.mark.parametrize(("raw", "tls"), [
    ({"TransitEncryptionEnabled": True, "TransitEncryptionMode": "preferred"}, True),
    ({"TransitEncryptionEnabled": False}, False),
    ({}, False),  # AWS's default: off
])
def test_cache_endpoints_carry_tls_where_transit_encryption_is_on(raw: dict[str, Any],
                                                                  tls: bool) -> None:
    cache = aws.Cache("arn:cache", "sessions", "replication group", "redis",
                      ("master.sessions.cache.amazonaws.com:6379",),
                      aws.read_settings(raw, aws.CACHE_SETTINGS, "DescribeReplicationGroups"))

    [endpoint] = offers(aws.ElastiCacheTransitEncryption(), in_region(cache))

    assert shape(endpoint) == ("master.sessions.cache.amazonaws.com", 6379, tls, "internal")
    assert endpoint.via == "ElastiCache"


def test_an_unread_transit_setting_is_offered_for_the_probe_to_tell() -> None:
    cache = aws.Cache("arn:cache", "s", "cache cluster", "redis",
                      ("s.cache.amazonaws.com:6379",),
                      {"transit_encryption": aws.Observed(DENIED)})
    [endpoint] = offers(aws.ElastiCacheTransitEncryption(), in_region(cache))
    assert endpoint.tls is True


def test_search_domains_vpc_endpoints_are_internal() -> None:
    vpc = "vpc-notes.es.amazonaws.com:443"
    domain = aws.SearchDomain("arn:es:domain/notes", "notes", "OpenSearch_2.11",
                              ("search-notes.es.amazonaws.com:443", vpc), {}, (vpc,))

    found = offers(aws.OpenSearchTransit(), in_region(domain))

    assert [shape(e) for e in found] == [
        ("search-notes.es.amazonaws.com", 443, True, "external"),
        ("vpc-notes.es.amazonaws.com", 443, True, "internal")]
    assert {e.via for e in found} == {"OpenSearch domain"}


def test_every_check_offers_nothing_for_an_unknown_region_list() -> None:
    for kind in aws.CHECKS:
        global_service = kind in (aws.CloudFrontViewerTls, aws.CloudFrontOriginTls)
        obs: Any = DENIED if global_service else aws.Regional((), DENIED)
        assert offers(kind(), obs) == [], kind.meta.id
