"""
Endpoints found in a cluster's control plane are probed live when, and only when, the
inventory opts the cluster in: the real Kubernetes client against the API stand-in, the real
prober against loopback TLS servers with certificates minted for the advertised names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from hipaacheck.config import parse_inventory
from hipaacheck.lab.base import LabPart
from hipaacheck.lab.discovered import DiscoveredLab, start_discovered_lab
from hipaacheck.lab.kubeapi import LIVE_ENDPOINTS, start_kubernetes_lab
from hipaacheck.model import EndpointRecord, Finding, Status, TargetKind
from hipaacheck.registry import load_registry
from hipaacheck.result import ScanResult, Shard
from hipaacheck.scanning import run_scan
from hipaacheck.sharding import merge

ONLY = ("kubernetes.ingress.tls", "kubernetes.service.load_balancer_tls",
        "kubernetes.gateway.listener_tls", "tls.endpoint")
MODERN = "portal.clinic.example.com:443"
LEGACY = "api.clinic.example.com:443"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[LabPart, DiscoveredLab]]:
    """The lab cluster and the loopback servers that answer for its advertised endpoints."""
    workdir = tmp_path_factory.mktemp("discovered")
    kube = start_kubernetes_lab(workdir / "kubernetes")
    servers = start_discovered_lab(workdir / "servers", [kube])
    assert servers is not None
    yield kube, servers
    servers.part.stop()
    kube.stop()


def _scan(inventory: dict[str, Any]) -> ScanResult:
    document = {"version": 1, "organization": "test", **inventory,
                "scan": {"workers": 4, "probe_timeout_seconds": 5}}
    return run_scan(parse_inventory(yaml.safe_dump(document)), load_registry(), only=ONLY)


def _records(result: ScanResult) -> dict[str, EndpointRecord]:
    return {r.endpoint.address: r for r in result.endpoints}


def test_an_opted_in_cluster_has_its_endpoints_probed(cluster: tuple[LabPart, DiscoveredLab]) -> None:
    kube, _ = cluster
    result = _scan(kube.inventory)
    records = _records(result)
    # Then every live endpoint the lab answers for was probed, through the loopback servers
    for address in LIVE_ENDPOINTS:
        assert records[address].probed, records[address].note
        assert "connect_to" in records[address].note
    # And each probed endpoint is a TLS target of the scan, judged by the TLS checks
    tls_targets = {t.id for t in result.targets if t.kind is TargetKind.TLS_ENDPOINT}
    assert {records[a].target for a in LIVE_ENDPOINTS} == tls_targets
    protocols = {f.target: f.status for f in result.findings
                 if f.check_id == "tls.endpoint.protocols"}
    assert protocols[records[MODERN].target] is Status.PASS
    assert protocols[records[LEGACY].target] is Status.FAIL
    # And the certificate minted for the advertised name verifies against the source's bundle
    chains = {f.target: f.status for f in result.findings
              if f.check_id == "tls.endpoint.certificate"}
    assert chains[records[MODERN].target] is Status.PASS


def test_endpoints_outside_the_opt_in_are_listed_with_the_reason(
        cluster: tuple[LabPart, DiscoveredLab]) -> None:
    kube, _ = cluster
    records = _records(_scan(kube.inventory))
    unprobed = [r for r in records.values() if not r.probed]
    # Then the plaintext listeners and the hosts outside `include` are listed, not probed
    assert any("plaintext" in r.note for r in unprobed)
    assert any("include" in r.note for r in unprobed)
    assert all(r.target is None for r in unprobed)


def test_a_cluster_that_is_not_opted_in_is_never_connected_to(
        cluster: tuple[LabPart, DiscoveredLab]) -> None:
    kube, servers = cluster
    inventory = yaml.safe_load(yaml.safe_dump(kube.inventory))
    for entry in inventory["kubernetes"]["clusters"]:
        entry.pop("probe_endpoints")
    before = servers.connections()
    result = _scan(inventory)
    # Then every endpoint is still listed, none is probed, and no server saw a connection
    assert result.endpoints
    assert not any(r.probed for r in result.endpoints)
    assert not any(t.kind is TargetKind.TLS_ENDPOINT for t in result.targets)
    assert servers.connections() == before


def test_the_json_document_carries_every_endpoint(
        cluster: tuple[LabPart, DiscoveredLab]) -> None:
    kube, _ = cluster
    result = _scan(kube.inventory)
    again = ScanResult.from_json(result.to_json())
    assert again.endpoints == result.endpoints



def test_shards_merge_into_the_single_scan_when_two_clusters_share_endpoints(
        cluster: tuple[LabPart, DiscoveredLab]) -> None:
    # Given two opted-in clusters (one API server) that find the same endpoints
    kube, _ = cluster
    inventory = yaml.safe_load(yaml.safe_dump(kube.inventory))
    [entry] = inventory["kubernetes"]["clusters"]
    inventory["kubernetes"]["clusters"] = [{**entry, "name": "lab-a"}, {**entry, "name": "lab-b"}]
    document = parse_inventory(yaml.safe_dump(
        {"version": 1, "organization": "test", **inventory,
         "scan": {"workers": 4, "probe_timeout_seconds": 5}}))
    single = run_scan(document, load_registry(), only=ONLY)
    # When each shard scans one cluster and the shards are merged
    shards = [run_scan(document, load_registry(), only=ONLY, shard=Shard(k, 2)) for k in (1, 2)]
    merged = merge(shards).result
    # Then the merged result lists and judges each endpoint once, as the single scan does
    assert merged.endpoints == single.endpoints
    assert sorted(t.id for t in merged.targets) == sorted(t.id for t in single.targets)
    assert sorted(_key(f) for f in merged.findings) == sorted(_key(f) for f in single.findings)
    assert merged.tasks == single.tasks


def _key(finding: Finding) -> tuple[str, str, str, str]:
    return finding.check_id, finding.target, finding.resource, finding.status.value
