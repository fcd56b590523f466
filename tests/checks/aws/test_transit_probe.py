"""
Load balancer listeners found through moto are probed live when the account opts in: the
listener's DNS name is routed (`connect_to`) to a loopback TLS server holding a certificate
minted for that name, and the TLS checks judge it like a configured endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hipaacheck.config import Inventory
from hipaacheck.lab.aws import LabCredentials
from hipaacheck.lab.certs import mint_named_certificate
from hipaacheck.lab.tls import RunningServer, start_tls_server
from hipaacheck.model import Status, TargetKind
from hipaacheck.registry import load_registry
from hipaacheck.result import ScanResult
from hipaacheck.scanning import run_scan

from .conftest import elb_network

REGION = "us-east-1"
ONLY = ("aws.elb.tls_policy", "tls.endpoint")


def _seed(creds: LabCredentials, url: str) -> dict[str, str]:
    """An internet-facing ALB and an internal one, each with an HTTPS and an HTTP listener."""
    network = elb_network(creds, url, REGION)
    vpc, subnets, cert = network.vpc, network.subnets, network.certificate
    elb = creds.client("elbv2", REGION, url)
    group = elb.create_target_group(Name="tg", Protocol="HTTPS", Port=443,
                                    VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
    names = {}
    for name, scheme in (("portal", "internet-facing"), ("records", "internal")):
        lb = elb.create_load_balancer(Name=name, Subnets=subnets,
                                      Scheme=scheme)["LoadBalancers"][0]
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTPS", Port=443,
                            SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
                            Certificates=[{"CertificateArn": cert}],
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                            DefaultActions=[{"Type": "redirect", "RedirectConfig": {
                                "Protocol": "HTTPS", "Port": "443",
                                "StatusCode": "HTTP_301"}}])
        names[name] = str(lb["DNSName"])
    return names


@pytest.fixture
def servers(tmp_path: Path, aws_creds: LabCredentials, moto_url: str
            ) -> Iterator[tuple[dict[str, str], dict[str, RunningServer], Path]]:
    """The seeded load balancers' DNS names, a modern and a legacy server, and their CA."""
    names = _seed(aws_creds, moto_url)
    cert, bundle = mint_named_certificate(tmp_path, "elb", tuple(names.values()))
    started = {"portal": start_tls_server("portal", cert, "modern"),
               "records": start_tls_server("records", cert, "legacy")}
    yield names, started, bundle
    for server in started.values():
        server.stop()


def _inventory(moto_url: str, probe: dict[str, Any] | None) -> Inventory:
    account: dict[str, Any] = {"name": "prod", "regions": [REGION], "endpoint_url": moto_url}
    if probe is not None:
        account["probe_endpoints"] = probe
    return Inventory.model_validate({"organization": "test", "aws": {"accounts": [account]},
                                     "scan": {"workers": 4, "probe_timeout_seconds": 5}})


def _scan(inventory: Inventory) -> ScanResult:
    return run_scan(inventory, load_registry(), only=ONLY)


def test_opted_in_listeners_are_probed_and_judged(servers, moto_url: str) -> None:
    names, started, bundle = servers
    routes = {f"{names[n]}:443": f"{s.host}:{s.port}" for n, s in started.items()}
    result = _scan(_inventory(moto_url, {"connect_to": routes, "ca_bundle": str(bundle),
                                         "zone": "internal"}))
    records = {r.endpoint.address: r for r in result.endpoints}
    # Then both HTTPS listeners were probed through the loopback servers
    portal, internal = records[f"{names['portal']}:443"], records[f"{names['records']}:443"]
    assert portal.probed and internal.probed
    # (the account's zone override judges the internet-facing one as internal too)
    assert internal.endpoint.zone == portal.endpoint.zone == "internal"
    # And the HTTP listeners are listed as plaintext by configuration, never probed
    assert not records[f"{names['portal']}:80"].probed
    assert "plaintext" in records[f"{names['portal']}:80"].note
    # And the TLS checks judged what answered: the legacy server accepts TLS 1.0 and 1.1
    protocols = {f.target: f.status for f in result.findings
                 if f.check_id == "tls.endpoint.protocols"}
    assert protocols[portal.target] is Status.PASS
    assert protocols[internal.target] is Status.FAIL
    chains = {f.target: f.status for f in result.findings
              if f.check_id == "tls.endpoint.certificate"}
    assert chains[portal.target] is Status.PASS
    # And the findings name the listener, not the address the probe was routed to
    assert {f.resource for f in result.findings if f.target == portal.target} == {
        f"{names['portal']}:443"}
    # And the servers saw connections only because the account opted in
    assert all(s.connections > 0 for s in started.values())


def test_an_account_that_is_not_opted_in_is_listed_and_never_connected_to(
        servers, moto_url: str) -> None:
    names, started, _ = servers
    result = _scan(_inventory(moto_url, None))
    assert {r.endpoint.address for r in result.endpoints} >= {f"{n}:443" for n in names.values()}
    assert not any(r.probed for r in result.endpoints)
    assert not any(t.kind is TargetKind.TLS_ENDPOINT for t in result.targets)
    assert all(s.connections == 0 for s in started.values())


def test_an_unresolvable_listener_is_unverified_never_pass(servers, moto_url: str) -> None:
    # Given an opt-in without a route: moto's DNS names resolve nowhere on this machine
    result = _scan(_inventory(moto_url, {"include": ["portal-*"]}))
    probed = [r for r in result.endpoints if r.probed]
    assert [r.endpoint.host for r in probed] == [servers[0]["portal"]]
    statuses = {f.status for f in result.findings if f.target == probed[0].target}
    assert statuses == {Status.UNVERIFIED}
