"""
Transmission-security checks of AWS, collected against moto: load balancers, CloudFront, API
Gateway, RDS parameter groups, ElastiCache and OpenSearch, seeded sound and broken in one
account (us-east-1; eu-west-1 left empty), then access denied through the fault proxy and the
engine defaults moto cannot serve through botocore's Stubber.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.stub import Stubber

from hipaacheck.check import Check, CheckContext
from hipaacheck.checks.aws.transit import (
    CHECKS,
    PROBE_NOTE,
    ApiGatewayDomainTls,
    CloudFrontOriginTls,
    CloudFrontViewerTls,
    ElastiCacheTransitEncryption,
    ElbPlaintextListeners,
    ElbTargetProtocol,
    ElbTlsPolicy,
    OpenSearchTransit,
    RdsTransportTls,
)
from hipaacheck.config import AwsAccountConfig
from hipaacheck.lab.aws import LabCredentials
from hipaacheck.model import Endpoint, Finding, Status, Target, TargetKind, UnknownReason

from .conftest import DENIED_MESSAGE, FaultProxy, aws_target, elb_network, new_ctx

REGION = "us-east-1"
EMPTY_REGION = "eu-west-1"


def _seed_elb(creds: LabCredentials, url: str) -> None:
    """Two ALBs, an NLB and a classic load balancer, sound and broken."""
    network = elb_network(creds, url, REGION)
    vpc, subnets, cert = network.vpc, network.subnets, network.certificate
    elb = creds.client("elbv2", REGION, url)

    def group(name: str, protocol: str, port: int) -> str:
        return str(elb.create_target_group(Name=name, Protocol=protocol, Port=port,
                                           VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"])

    def listen(lb: str, protocol: str, port: int, actions: list[dict[str, Any]],
               policy: str | None = None) -> None:
        extra: dict[str, Any] = {"SslPolicy": policy, "Certificates": [
            {"CertificateArn": cert}]} if policy else {}
        elb.create_listener(LoadBalancerArn=lb, Protocol=protocol, Port=port,
                            DefaultActions=actions, **extra)

    https_group, http_group = group("tg-https", "HTTPS", 443), group("tg-http", "HTTP", 80)
    tls_fed, passthrough = group("tg-tcp-decrypted", "TCP", 5432), group("tg-tcp-raw", "TCP", 6379)
    portal = elb.create_load_balancer(Name="portal", Subnets=subnets)["LoadBalancers"][0]
    legacy = elb.create_load_balancer(Name="legacy", Subnets=subnets)["LoadBalancers"][0]
    db = elb.create_load_balancer(Name="db", Subnets=subnets, Type="network",
                                  Scheme="internal")["LoadBalancers"][0]
    forward = [{"Type": "forward", "TargetGroupArn": https_group}]
    listen(portal["LoadBalancerArn"], "HTTPS", 443, forward, "ELBSecurityPolicy-TLS13-1-2-2021-06")
    listen(portal["LoadBalancerArn"], "HTTP", 80, [{"Type": "redirect", "RedirectConfig": {
        "Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}])
    listen(portal["LoadBalancerArn"], "HTTP", 8080,
           [{"Type": "forward", "TargetGroupArn": http_group}])
    listen(legacy["LoadBalancerArn"], "HTTPS", 443, forward, "ELBSecurityPolicy-2016-08")
    listen(db["LoadBalancerArn"], "TLS", 5432, [{"Type": "forward", "TargetGroupArn": tls_fed}],
           "ELBSecurityPolicy-TLS-1-2-2017-01")
    listen(db["LoadBalancerArn"], "TCP", 6379,
           [{"Type": "forward", "TargetGroupArn": passthrough}])
    # TLS passed through to the targets, which terminate it themselves.
    listen(db["LoadBalancerArn"], "TCP", 443,
           [{"Type": "forward", "TargetGroupArn": passthrough}])
    _seed_classic(creds, url, cert)


def _seed_classic(creds: LabCredentials, url: str, cert: str) -> None:
    """A classic load balancer: HTTPS with a policy allowing TLS 1.0, and plain HTTP."""
    classic = creds.client("elb", REGION, url)
    classic.create_load_balancer(LoadBalancerName="old-intake", AvailabilityZones=[f"{REGION}a"],
                                 Listeners=[
        {"Protocol": "HTTPS", "LoadBalancerPort": 443, "InstanceProtocol": "HTTP",
         "InstancePort": 80, "SSLCertificateId": cert},
        {"Protocol": "HTTP", "LoadBalancerPort": 80, "InstanceProtocol": "HTTP",
         "InstancePort": 80}])
    attributes = [{"AttributeName": f"Protocol-{p}", "AttributeValue": value}
                  for p, value in (("SSLv3", "false"), ("TLSv1", "true"), ("TLSv1.1", "true"),
                                   ("TLSv1.2", "true"))]
    classic.create_load_balancer_policy(
        LoadBalancerName="old-intake", PolicyName="intake-ssl",
        PolicyTypeName="SSLNegotiationPolicyType", PolicyAttributes=attributes)
    classic.set_load_balancer_policies_of_listener(
        LoadBalancerName="old-intake", LoadBalancerPort=443, PolicyNames=["intake-ssl"])


def _origin(origin_id: str, policy: str, protocols: list[str]) -> dict[str, Any]:
    return {"Id": origin_id, "DomainName": f"{origin_id}.clinic.example", "CustomOriginConfig": {
        "HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": policy,
        "OriginSslProtocols": {"Quantity": len(protocols), "Items": protocols}}}


def _distribution(reference: str, origin: dict[str, Any], viewer: str,
                  certificate: dict[str, Any], aliases: list[str]) -> dict[str, Any]:
    behavior = {"TargetOriginId": origin["Id"], "ViewerProtocolPolicy": viewer,
                "TrustedSigners": {"Enabled": False, "Quantity": 0}, "MinTTL": 0,
                "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}}}
    return {"CallerReference": reference, "Comment": "", "Enabled": True,
            "Aliases": {"Quantity": len(aliases), "Items": aliases},
            "Origins": {"Quantity": 1, "Items": [origin]}, "DefaultCacheBehavior": behavior,
            "ViewerCertificate": certificate}


def _seed_edge(creds: LabCredentials, url: str) -> None:
    """CloudFront distributions and API Gateway custom domains, sound and broken."""
    cloudfront = creds.client("cloudfront", REGION, url)
    cert = f"arn:aws:acm:{REGION}:{creds.account_id}:certificate/edge"
    cloudfront.create_distribution(DistributionConfig=_distribution(
        "broken", _origin("reports", "http-only", ["TLSv1", "TLSv1.2"]), "allow-all",
        {"CloudFrontDefaultCertificate": True, "MinimumProtocolVersion": "TLSv1"}, []))
    cloudfront.create_distribution(DistributionConfig=_distribution(
        "sound", _origin("portal", "https-only", ["TLSv1.2"]), "redirect-to-https",
        {"ACMCertificateArn": cert, "SSLSupportMethod": "sni-only",
         "MinimumProtocolVersion": "TLSv1.2_2021", "CloudFrontDefaultCertificate": False},
        ["cdn.clinic.example"]))
    rest = creds.client("apigateway", REGION, url)
    rest.create_domain_name(domainName="legacy-api.clinic.example", regionalCertificateArn=cert,
                            endpointConfiguration={"types": ["REGIONAL"]},
                            securityPolicy="TLS_1_0")
    rest.create_domain_name(domainName="api.clinic.example", regionalCertificateArn=cert,
                            endpointConfiguration={"types": ["REGIONAL"]},
                            securityPolicy="TLS_1_2")
    rest.create_domain_name(domainName="private.clinic.example", certificateArn=cert,
                            endpointConfiguration={"types": ["PRIVATE"]},
                            securityPolicy="TLS_1_2")
    creds.client("apigatewayv2", REGION, url).create_domain_name(
        DomainName="ws.clinic.example", DomainNameConfigurations=[
            {"CertificateArn": cert, "EndpointType": "REGIONAL", "SecurityPolicy": "TLS_1_2"}])


PASSWORD = "lab-fake-password-1"


def _seed_rds(creds: LabCredentials, url: str) -> None:
    """PostgreSQL instances with strict and lax groups, MySQL on defaults, an Aurora cluster."""
    rds = creds.client("rds", REGION, url)
    for name, force in (("pg-strict", "1"), ("pg-lax", "0")):
        rds.create_db_parameter_group(DBParameterGroupName=name, Description=name,
                                      DBParameterGroupFamily="postgres16")
        rds.modify_db_parameter_group(DBParameterGroupName=name, Parameters=[
            {"ParameterName": "rds.force_ssl", "ParameterValue": force,
             "ApplyMethod": "immediate"},
            {"ParameterName": "ssl_min_protocol_version", "ParameterValue": "TLSv1.2",
             "ApplyMethod": "immediate"}])
    for name, group, public in (("records", "pg-strict", True), ("scratch", "pg-lax", False)):
        rds.create_db_instance(DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro",
                               Engine="postgres", EngineVersion="16.3", AllocatedStorage=20,
                               MasterUsername="labadmin", MasterUserPassword=PASSWORD,
                               DBParameterGroupName=group, PubliclyAccessible=public)
    rds.create_db_instance(DBInstanceIdentifier="billing", DBInstanceClass="db.t3.micro",
                           Engine="mysql", AllocatedStorage=20, MasterUsername="labadmin",
                           MasterUserPassword=PASSWORD)
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName="apg-lax",
                                          DBParameterGroupFamily="aurora-postgresql16",
                                          Description="lax")
    rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName="apg-lax", Parameters=[
        {"ParameterName": "rds.force_ssl", "ParameterValue": "0", "ApplyMethod": "immediate"},
        {"ParameterName": "ssl_min_protocol_version", "ParameterValue": "TLSv1",
         "ApplyMethod": "immediate"}])
    rds.create_db_cluster(DBClusterIdentifier="analytics", Engine="aurora-postgresql",
                          MasterUsername="labadmin", MasterUserPassword=PASSWORD,
                          DBClusterParameterGroupName="apg-lax")


def _seed_stores(creds: LabCredentials, url: str) -> None:
    """ElastiCache groups and a Memcached cluster; OpenSearch domains."""
    cache = creds.client("elasticache", REGION, url)
    for name, options in (("sessions-preferred", {"TransitEncryptionEnabled": True,
                                                  "TransitEncryptionMode": "preferred"}),
                          ("sessions-plain", {}),
                          ("sessions-tls", {"TransitEncryptionEnabled": True,
                                            "TransitEncryptionMode": "required"})):
        cache.create_replication_group(ReplicationGroupId=name, ReplicationGroupDescription=name,
                                       Engine="redis", CacheNodeType="cache.t3.micro",
                                       NumCacheClusters=1, **options)
    cache.create_cache_cluster(CacheClusterId="memo", Engine="memcached",
                               CacheNodeType="cache.t3.micro", NumCacheNodes=1)
    search = creds.client("opensearch", REGION, url)
    search.create_domain(DomainName="notes-search", NodeToNodeEncryptionOptions={"Enabled": False},
                         DomainEndpointOptions={"EnforceHTTPS": False,
                                                "TLSSecurityPolicy": "Policy-Min-TLS-1-0-2019-07"})
    for name, vpc in (("audit-search", None), ("phi-search", {"SubnetIds": ["subnet-1"]})):
        search.create_domain(DomainName=name, NodeToNodeEncryptionOptions={"Enabled": True},
                             DomainEndpointOptions={
                                 "EnforceHTTPS": True,
                                 "TLSSecurityPolicy": "Policy-Min-TLS-1-2-PFS-2023-10"},
                             **({"VPCOptions": vpc} if vpc else {}))


@dataclass(frozen=True)
class Seeded:
    """
    The seeded account's target, and the findings and offered endpoints of every check, from
    one scan context.
    """

    target: Target
    ctx: CheckContext
    findings: dict[str, list[Finding]]
    endpoints: dict[str, list[Endpoint]]


@pytest.fixture(scope="module")
def seeded(moto_url: str, module_creds: LabCredentials) -> Seeded:
    """Seed the module's account, then collect, evaluate and list the endpoints of every
    check in one context, as the runner does."""
    for seed in (_seed_elb, _seed_edge, _seed_rds, _seed_stores):
        seed(module_creds, moto_url)
    target = aws_target(moto_url, regions=(REGION, EMPTY_REGION))
    ctx = new_ctx()
    findings, endpoints = {}, {}
    for kind in CHECKS:
        check = kind()
        obs = check.collect(ctx, target)
        findings[check.meta.id] = list(check.evaluate(obs, target, ctx.policy))
        endpoints[check.meta.id] = list(check.endpoints(obs, target))
    return Seeded(target, ctx, findings, endpoints)


def statuses(seeded: Seeded, check: type[Check[Any]]) -> dict[str, Status]:
    """Resource to status for one check's findings."""
    return {f.resource: f.status for f in seeded.findings[check.meta.id]}


def status_of(seeded: Seeded, check: type[Check[Any]], fragment: str) -> Status:
    """The status of the one finding whose resource contains `fragment`."""
    [status] = [s for r, s in statuses(seeded, check).items() if fragment in r]
    return status


def test_listener_policies_resolve_through_the_api(seeded: Seeded) -> None:
    findings = seeded.findings[ElbTlsPolicy.meta.id]
    by_endpoint = {str(f.evidence["endpoints"][0]).split(".")[0]: f for f in findings
                   if f.evidence.get("endpoints")}

    assert by_endpoint["portal-1"].status == Status.PASS
    assert by_endpoint["portal-1"].evidence["protocols"] == ("TLSv1.3", "TLSv1.2")
    assert by_endpoint["legacy-1"].status == Status.FAIL
    assert by_endpoint["db-1"].status == Status.WARN  # TLS 1.2 without 1.3
    assert status_of(seeded, ElbTlsPolicy, "classic/old-intake:443") == Status.FAIL
    assert all(f.evidence["probe"] == PROBE_NOTE for f in by_endpoint.values())
    assert status_of(seeded, ElbTlsPolicy, f"elb:{EMPTY_REGION}") == Status.PASS


def test_plaintext_listeners(seeded: Seeded) -> None:
    findings = seeded.findings[ElbPlaintextListeners.meta.id]
    by_port = {(f.evidence.get("load_balancer"), str(f.evidence["endpoints"][0]).rsplit(":")[-1]):
               f for f in findings if f.evidence.get("endpoints")}

    assert by_port[("portal", "80")].status == Status.PASS
    assert by_port[("portal", "8080")].status == Status.FAIL
    assert by_port[("old-intake", "80")].status == Status.FAIL
    tcp = by_port[("db", "6379")]
    assert (tcp.status, tcp.unknown_reason) == (Status.UNVERIFIED, UnknownReason.NOT_VISIBLE)


def test_target_protocols(seeded: Seeded) -> None:
    assert status_of(seeded, ElbTargetProtocol, "targetgroup/tg-https/") == Status.PASS
    assert status_of(seeded, ElbTargetProtocol, "targetgroup/tg-http/") == Status.FAIL
    assert status_of(seeded, ElbTargetProtocol, "tg-tcp-decrypted") == Status.FAIL
    assert status_of(seeded, ElbTargetProtocol, "tg-tcp-raw") == Status.UNVERIFIED
    # moto reports the HTTPS listener's instance protocol as HTTPS; the HTTP one is faithful.
    assert status_of(seeded, ElbTargetProtocol, "classic/old-intake:80/backend") == Status.FAIL


def test_cloudfront_viewer_and_origin(seeded: Seeded) -> None:
    viewer = seeded.findings[CloudFrontViewerTls.meta.id]
    origin = seeded.findings[CloudFrontOriginTls.meta.id]
    sound = [f for f in viewer if "cdn.clinic.example:443" in f.evidence["endpoints"]]

    assert sorted(f.status for f in viewer) == [Status.FAIL, Status.PASS]
    assert sound[0].status == Status.PASS
    assert sorted(f.status for f in origin) == [Status.FAIL, Status.PASS]
    broken = next(f for f in viewer if f.status == Status.FAIL)
    assert broken.evidence["default_certificate"] == "true"
    assert broken.evidence["http_behaviors"] == ("default",)


def test_api_gateway_domains(seeded: Seeded) -> None:
    assert status_of(seeded, ApiGatewayDomainTls, "legacy-api.clinic.example") == Status.FAIL
    assert status_of(seeded, ApiGatewayDomainTls, "/api.clinic.example") == Status.PASS
    assert status_of(seeded, ApiGatewayDomainTls, "ws.clinic.example") == Status.PASS


def test_rds_parameters_and_defaults(seeded: Seeded) -> None:
    findings = {f.resource.rsplit(":", 1)[-1]: f for f in seeded.findings[RdsTransportTls.meta.id]}

    assert findings["records"].status == Status.PASS
    assert findings["records"].evidence["force_ssl_source"] == "parameter group"
    assert findings["scratch"].status == Status.FAIL
    assert findings["analytics"].status == Status.FAIL
    assert findings["analytics"].evidence["kind"] == "cluster"
    # moto serves no engine defaults: an unset parameter is UNVERIFIED, never assumed.
    assert findings["billing"].status == Status.UNVERIFIED
    assert findings["billing"].evidence["endpoints"]


def test_elasticache_and_opensearch(seeded: Seeded) -> None:
    assert status_of(seeded, ElastiCacheTransitEncryption, "sessions-preferred") == Status.FAIL
    assert status_of(seeded, ElastiCacheTransitEncryption, "sessions-plain") == Status.FAIL
    assert status_of(seeded, ElastiCacheTransitEncryption, "sessions-tls") == Status.PASS
    assert status_of(seeded, ElastiCacheTransitEncryption, "cluster:memo") == Status.FAIL
    assert status_of(seeded, OpenSearchTransit, "domain/notes-search") == Status.FAIL
    assert status_of(seeded, OpenSearchTransit, "domain/audit-search") == Status.PASS


def _declared(check: type[Check[Any]]) -> set[str]:
    return {op.action for op in check.meta.operations}


def test_every_call_is_a_declared_read_made_once(seeded: Seeded) -> None:
    calls = seeded.ctx.clients.aws_calls()
    declared = set().union(*(_declared(c) for c in CHECKS))
    # NOTE: the session names API Gateway calls by operation; IAM authorises them as GET.
    recorded = {"apigateway:GET" if c.service in ("apigateway", "apigatewayv2") else c.iam_action
                for c in calls}

    assert recorded <= declared
    assert all(c.operation.startswith(("Describe", "List", "Get")) for c in calls)
    first_pages = [c.identity for c in calls if not c.continued]
    assert len(first_pages) == len(set(first_pages))


def test_each_check_alone_stays_within_its_declared_operations(moto_url: str,
                                                                module_creds: LabCredentials,
                                                                seeded: Seeded) -> None:
    for kind in (ElbPlaintextListeners, RdsTransportTls, OpenSearchTransit):
        ctx = new_ctx()
        kind().collect(ctx, seeded.target)
        actions = {c.iam_action for c in ctx.clients.aws_calls()}
        assert actions <= _declared(kind), kind.meta.id


def test_denied_listing_is_unverified_naming_the_action(faults: FaultProxy,
                                                       module_creds: LabCredentials,
                                                       seeded: Seeded) -> None:
    faults.deny("rds", "DescribeDBInstances", region=REGION)
    target = aws_target(faults.url, regions=(REGION,))
    check = RdsTransportTls()

    [finding] = check.evaluate(check.collect(new_ctx(), target), target, new_ctx().policy)

    assert (finding.resource, finding.status) == (f"rds:{REGION}", Status.UNVERIFIED)
    assert (finding.unknown_reason, finding.needs) == (UnknownReason.ACCESS_DENIED,
                                                       "rds:DescribeDBInstances")
    assert DENIED_MESSAGE not in repr(finding)


def test_denied_domain_description_is_unverified(faults: FaultProxy,
                                                 module_creds: LabCredentials,
                                                 seeded: Seeded) -> None:
    faults.deny("es", "DescribeDomains", region=REGION)
    target = aws_target(faults.url, regions=(REGION,))
    check = OpenSearchTransit()

    [finding] = check.evaluate(check.collect(new_ctx(), target), target, new_ctx().policy)

    assert (finding.status, finding.needs) == (Status.UNVERIFIED, "es:DescribeDomains")


def _queue_rds(stubber: Stubber, defaults: dict[str, Any]) -> None:
    """An instance on a default group whose parameters are unset, then the engine defaults."""
    stubber.add_response("describe_db_instances", {"DBInstances": [{
        "DBInstanceIdentifier": "intake", "Engine": "postgres", "EngineVersion": "16.3",
        "DBInstanceArn": f"arn:aws:rds:{REGION}:111122223333:db:intake",
        "Endpoint": {"Address": "intake.example.rds.amazonaws.com", "Port": 5432},
        "DBParameterGroups": [{"DBParameterGroupName": "default.postgres16",
                               "ParameterApplyStatus": "in-sync"}]}]})
    stubber.add_response("describe_db_clusters", {"DBClusters": []})
    stubber.add_response("describe_db_parameters", {"Parameters": [
        {"ParameterName": "rds.force_ssl", "Source": "engine-default"},
        {"ParameterName": "ssl_min_protocol_version", "Source": "engine-default"}]})
    stubber.add_response("describe_db_parameter_groups", {"DBParameterGroups": [
        {"DBParameterGroupName": "default.postgres16", "DBParameterGroupFamily": "postgres16"}]})
    stubber.add_response("describe_engine_default_parameters", {"EngineDefaults": {
        "DBParameterGroupFamily": "postgres16", "Marker": "page-2",
        "Parameters": [{"ParameterName": "rds.force_ssl", **defaults}]}})
    stubber.add_response("describe_engine_default_parameters", {"EngineDefaults": {
        "DBParameterGroupFamily": "postgres16",
        "Parameters": [{"ParameterName": "ssl_min_protocol_version"}]}})


@pytest.mark.parametrize(("defaults", "expected"), [
    ({"ParameterValue": "1"}, Status.PASS),
    ({"ParameterValue": "0"}, Status.FAIL),
    ({}, Status.UNVERIFIED),
])
def test_unset_parameters_take_the_engine_defaults(
        defaults: dict[str, Any], expected: Status, ctx: CheckContext, account: AwsAccountConfig,
        stubbed: Callable[[str, str], Stubber]) -> None:
    single = account.model_copy(update={"regions": [REGION]})
    target = Target(TargetKind.AWS, "aws:test", "test", single)
    _queue_rds(stubbed("rds", REGION), defaults)
    check = RdsTransportTls()

    [finding] = check.evaluate(check.collect(ctx, target), target, ctx.policy)

    assert finding.status == expected
    if expected is Status.PASS:
        assert finding.evidence["force_ssl_source"] == "engine default"
        # Listed without a value: PostgreSQL's own default (TLSv1.2) applies.
        assert finding.evidence["ssl_min_protocol_version_source"] == "engine built-in default"


# --- endpoints offered for live probing -------------------------------------------------------

def offered(seeded: Seeded, check: type[Check[Any]]) -> dict[tuple[str, int], Endpoint]:
    """(first DNS label, port) to the endpoint one check offers."""
    found = seeded.endpoints[check.meta.id]
    by_key = {(e.host.split(".")[0], e.port): e for e in found}
    assert len(by_key) == len(found), "an endpoint is offered twice"
    assert all(e.source == seeded.target.id for e in found)
    return by_key


def shapes(found: dict[tuple[str, int], Endpoint]) -> dict[tuple[str, int], tuple[Any, ...]]:
    """The probing-relevant fields of each offered endpoint."""
    return {key: (e.tls, e.zone, e.starttls, e.unprobeable) for key, e in found.items()}


def test_every_listener_is_offered_by_the_policy_check_alone(seeded: Seeded) -> None:
    found = offered(seeded, ElbTlsPolicy)

    assert {key: (e.tls, e.zone) for key, e in found.items()} == {
        ("portal-1", 443): (True, "external"),
        ("portal-1", 80): (False, "external"),  # redirects: plaintext, listed only
        ("portal-1", 8080): (False, "external"),
        ("legacy-1", 443): (True, "external"),
        ("db-1", 5432): (True, "internal"),  # a TLS listener of an internal NLB
        ("db-1", 6379): (False, "internal"),  # TCP: whatever the targets speak
        ("db-1", 443): (True, "internal"),  # TCP on 443: TLS passed through
        ("old-intake", 443): (True, "external"),
        ("old-intake", 80): (False, "external"),
    }
    assert (found[("portal-1", 443)].via, found[("old-intake", 80)].via) == (
        "ELBv2 listener", "classic ELB listener")
    assert found[("old-intake", 80)].origin == "classic/old-intake:80"
    assert found[("legacy-1", 443)].origin.startswith("arn:aws:elasticloadbalancing:")
    assert seeded.endpoints[ElbPlaintextListeners.meta.id] == []
    assert seeded.endpoints[ElbTargetProtocol.meta.id] == []


def test_cloudfront_and_api_gateway_offer_their_domains(seeded: Seeded) -> None:
    viewer = seeded.endpoints[CloudFrontViewerTls.meta.id]
    origins = offered(seeded, CloudFrontOriginTls)
    domains = offered(seeded, ApiGatewayDomainTls)

    assert len(viewer) == 3 and "cdn.clinic.example" in {e.host for e in viewer}
    assert {(e.port, e.tls, e.zone, e.via) for e in viewer} == {
        (443, True, "external", "CloudFront distribution")}
    assert shapes(origins) == {("reports", 80): (False, "external", None, None),  # http-only
                               ("portal", 443): (True, "external", None, None)}
    assert shapes(domains) == {(name, 443): (True, zone, None, None) for name, zone in (
        ("legacy-api", "external"), ("api", "external"), ("ws", "external"),
        ("private", "internal"))}


def test_databases_caches_and_search_domains_are_offered(seeded: Seeded) -> None:
    postgres = (True, "internal", "postgres", None)
    databases = sorted((e.host.split(".")[0] + ("-reader" if ".cluster-ro-" in e.host else ""),
                        e.port, e.via, (e.tls, e.zone, e.starttls, e.unprobeable))
                       for e in seeded.endpoints[RdsTransportTls.meta.id])

    assert databases == [
        ("analytics", 5432, "RDS cluster", postgres),
        ("analytics-reader", 5432, "RDS cluster", postgres),
        ("billing", 3306, "RDS instance", (True, "internal", None,
                                           "the prober does not speak mysql's TLS negotiation")),
        ("records", 5432, "RDS instance", (True, "external", "postgres", None)),  # public
        ("scratch", 5432, "RDS instance", postgres),
    ]
    caches = {e.origin.rsplit(":", 1)[-1]: (e.port, e.tls, e.zone, e.via)
              for e in seeded.endpoints[ElastiCacheTransitEncryption.meta.id]}
    assert caches == {"sessions-preferred": (6379, True, "internal", "ElastiCache"),
                      "sessions-plain": (6379, False, "internal", "ElastiCache"),
                      "sessions-tls": (6379, True, "internal", "ElastiCache")}
    assert shapes(offered(seeded, OpenSearchTransit)) == {
        ("notes-search", 443): (True, "external", None, None),
        ("audit-search", 443): (True, "external", None, None),
        ("phi-search", 443): (True, "internal", None, None)}  # a VPC domain


def test_every_endpoint_in_evidence_is_offered(seeded: Seeded) -> None:
    listed = {str(address) for findings in seeded.findings.values() for f in findings
              if f.evidence.get("probe") == PROBE_NOTE for address in f.evidence["endpoints"]}
    offers = {e.address for found in seeded.endpoints.values() for e in found}

    assert listed == offers
    assert all(f.evidence["probe"] == PROBE_NOTE for findings in seeded.findings.values()
               for f in findings if "endpoints" in f.evidence)


def test_offering_endpoints_makes_no_call(seeded: Seeded) -> None:
    ctx = new_ctx()
    observations = [(kind(), kind().collect(ctx, seeded.target)) for kind in CHECKS]
    before = len(ctx.clients.aws_calls())

    offers = [e for check, obs in observations for e in check.endpoints(obs, seeded.target)]

    assert offers and len(ctx.clients.aws_calls()) == before


def test_a_denied_listing_offers_no_endpoint(faults: FaultProxy, module_creds: LabCredentials,
                                            seeded: Seeded) -> None:
    faults.deny("rds", "DescribeDBClusters", region=REGION)
    target = aws_target(faults.url, regions=(REGION,))
    check = RdsTransportTls()
    obs = check.collect(new_ctx(), target)

    [finding] = check.evaluate(obs, target, new_ctx().policy)

    assert (finding.status, finding.needs) == (Status.UNVERIFIED, "rds:DescribeDBClusters")
    # The instances were listed, but the region's listing as a whole is unknown: none offered.
    assert check.endpoints(obs, target) == []
