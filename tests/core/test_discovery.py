"""Which discovered endpoints are probed, and why the others are not."""

from __future__ import annotations

from pathlib import Path

import pytest

from hipaacheck.config import ProbeEndpointsConfig, TlsEndpointConfig
from hipaacheck.discovery import ProbeRequest, plan_probes
from hipaacheck.model import Endpoint, Target, TargetKind

AWS = "aws:prod"
K8S = "k8s:main"


def _ep(host: str, port: int = 443, source: str = K8S, **kw) -> Endpoint:
    defaults = {"origin": f"ingress/web/{host}", "via": "Ingress"}
    return Endpoint(host=host, port=port, source=source, **{**defaults, **kw})


def _configured(name: str, host: str, port: int, server_name: str | None = None) -> Target:
    config = TlsEndpointConfig(name=name, host=host, port=port, server_name=server_name)
    return Target(TargetKind.TLS_ENDPOINT, f"tls:{name}", name, config)


def _plan(found, sources, configured=(), tls_checks=True):
    return plan_probes(found, ProbeRequest(sources, configured, tls_checks))


def test_an_opted_in_source_is_probed_and_an_other_is_only_listed():
    # Given one endpoint from an opted-in cluster and one from an account that is not
    records, targets = _plan([_ep("portal.example.org"), _ep("lb.example.org", source=AWS)],
                             {K8S: ProbeEndpointsConfig(), AWS: None})
    by_host = {r.endpoint.host: r for r in records}
    # Then the cluster's is probed as a TLS target that sends and checks its name
    assert by_host["portal.example.org"].probed
    assert by_host["portal.example.org"].target == "tls:k8s:main/portal.example.org:443"
    [target] = targets
    assert target.kind is TargetKind.TLS_ENDPOINT
    assert target.config.host == "portal.example.org" and target.config.port == 443
    # And the account's is listed, not probed, naming the setting that would turn it on
    assert not by_host["lb.example.org"].probed
    assert by_host["lb.example.org"].target is None
    assert "probe_endpoints" in by_host["lb.example.org"].note


def test_connect_to_sends_the_connection_elsewhere_and_keeps_the_name():
    setting = ProbeEndpointsConfig(connect_to={"portal.example.org:443": "127.0.0.1:8443"})
    [record], [target] = _plan([_ep("portal.example.org")], {K8S: setting})
    # Then the target keeps the name (SNI, certificate match, the findings' resource)
    assert (target.config.host, target.config.port) == ("portal.example.org", 443)
    assert target.config.connect_to == "127.0.0.1:8443"
    assert record.probed and "127.0.0.1:8443" in record.note


@pytest.mark.parametrize(("endpoint", "words"), [
    (_ep("plain.example.org", 80, tls=False), "plaintext"),
    (_ep("db.example.org", 3306, unprobeable="the prober does not speak MySQL's TLS"), "MySQL"),
    (_ep("*.example.org"), "wildcard"),
    (_ep("secret.internal.example.org"), "include"),
])
def test_endpoints_that_are_never_probed_say_why(endpoint, words):
    setting = ProbeEndpointsConfig(exclude=["*.internal.example.org"])
    [record], targets = _plan([endpoint], {K8S: setting})
    assert not record.probed and targets == []
    assert words in record.note


def test_include_narrows_and_exclude_wins():
    setting = ProbeEndpointsConfig(include=["*.example.org"], exclude=["admin.example.org"])
    records, targets = _plan([_ep("www.example.org"), _ep("admin.example.org"),
                              _ep("other.example.com")], {K8S: setting})
    assert [t.config.host for t in targets] == ["www.example.org"]
    assert sum(r.probed for r in records) == 1


def test_an_endpoint_the_inventory_already_probes_is_not_probed_twice():
    configured = [_configured("portal", "10.0.0.5", 443, server_name="Portal.Example.org")]
    [record], targets = _plan([_ep("portal.example.org")], {K8S: ProbeEndpointsConfig()},
                              configured)
    assert targets == []
    assert record.probed and record.target == "tls:portal"


def test_one_endpoint_found_twice_is_one_record_with_both_origins():
    found = [_ep("lb.example.org", source=AWS, via="ELBv2 listener", origin="arn:listener/1"),
             _ep("lb.example.org", via="LoadBalancer Service", origin="service/web/front")]
    [record], [target] = _plan(found, {AWS: None, K8S: ProbeEndpointsConfig()})
    # Then the opted-in source's finding decides, and both origins are kept
    assert record.endpoint.source == K8S and target.id.startswith("tls:k8s:main/")
    assert record.origins == ("aws:prod ELBv2 listener arn:listener/1",
                              "k8s:main LoadBalancer Service service/web/front")


def test_a_source_probes_at_most_its_budget():
    setting = ProbeEndpointsConfig(max_endpoints=2)
    records, targets = _plan([_ep(f"h{i}.example.org") for i in range(5)], {K8S: setting})
    assert len(targets) == 2
    assert sum("max_endpoints" in r.note for r in records) == 3


def test_without_a_tls_check_selected_nothing_is_probed():
    [record], targets = _plan([_ep("portal.example.org")], {K8S: ProbeEndpointsConfig()},
                              tls_checks=False)
    assert targets == [] and not record.probed and "no TLS" in record.note


def test_internal_endpoints_verify_against_the_sources_bundle(tmp_path: Path):
    bundle = tmp_path / "ca.pem"
    setting = ProbeEndpointsConfig(ca_bundle=bundle)
    _, targets = _plan([_ep("db.internal", 5432, zone="internal", starttls="postgres"),
                        _ep("www.example.org")], {K8S: setting})
    by_host = {t.config.host: t.config for t in targets}
    assert by_host["db.internal"].ca_bundle == bundle
    assert by_host["db.internal"].starttls == "postgres"
    # An external endpoint keeps the public store
    assert by_host["www.example.org"].ca_bundle is None


def test_a_zone_override_judges_every_endpoint_as_internal(tmp_path: Path):
    setting = ProbeEndpointsConfig(zone="internal", ca_bundle=tmp_path / "ca.pem")
    [record], [target] = _plan([_ep("www.example.org")], {K8S: setting})
    assert target.config.zone == "internal" and target.config.ca_bundle == tmp_path / "ca.pem"
    # And the record shows the zone it was judged as
    assert record.endpoint.zone == "internal"


def test_ipv6_endpoints_are_named_in_brackets():
    _, targets = _plan([_ep("127.0.0.1", 8443), _ep("::1", 8443)], {K8S: ProbeEndpointsConfig()})
    assert {t.name: t.config.host for t in targets} == {"127.0.0.1:8443": "127.0.0.1",
                                                         "[::1]:8443": "::1"}


def test_the_plan_does_not_depend_on_the_order_endpoints_arrive_in():
    found = [_ep(f"h{i}.example.org", source=src) for i in range(4) for src in (AWS, K8S)]
    sources = {AWS: ProbeEndpointsConfig(max_endpoints=3), K8S: ProbeEndpointsConfig()}
    first = _plan(found, sources)
    second = _plan(list(reversed(found)), sources)
    assert first[0] == second[0]
    assert [t.id for t in first[1]] == [t.id for t in second[1]]


def test_a_second_opted_in_source_probes_what_the_first_leaves_out():
    # Given two clusters that find one host; the first's include leaves it out
    found = [_ep("portal.example.org", source="k8s:a"), _ep("portal.example.org", source="k8s:b")]
    sources = {"k8s:a": ProbeEndpointsConfig(include=["api.*"]), "k8s:b": ProbeEndpointsConfig()}
    [record], [target] = _plan(found, sources)
    # Then the second probes it, and the record says so
    assert record.probed and record.endpoint.source == "k8s:b"
    assert target.id == "tls:k8s:b/portal.example.org:443"


def test_a_refusal_names_the_source_whose_setting_refused():
    [record], _ = _plan([_ep("portal.example.org")], {K8S: ProbeEndpointsConfig(include=["x"])})
    assert record.note.endswith(f"include and exclude of {K8S}")


def test_a_configured_endpoint_is_not_claimed_probed_without_a_tls_check():
    configured = [_configured("portal", "portal.example.org", 443)]
    [record], _ = _plan([_ep("portal.example.org")], {K8S: ProbeEndpointsConfig()}, configured,
                        tls_checks=False)
    assert not record.probed and "no TLS" in record.note


def test_an_interrupted_scan_lists_every_endpoint_and_probes_none():
    request = ProbeRequest({K8S: ProbeEndpointsConfig()}, interrupted=True)
    records, targets = plan_probes([_ep("a.example.org"), _ep("b.example.org")], request)
    assert targets == [] and len(records) == 2
    assert all(not r.probed and "interrupted" in r.note for r in records)


def test_connect_to_matches_whatever_the_case_of_the_name(caplog: pytest.LogCaptureFixture):
    setting = ProbeEndpointsConfig(connect_to={"PORTAL.example.org:443": "127.0.0.1:8443",
                                               "typo.example.org:443": "127.0.0.1:9443"})
    [record], [target] = _plan([_ep("Portal.Example.org")], {K8S: setting})
    assert target.config.connect_to == "127.0.0.1:8443" and record.probed
    # And a route that matches nothing found is named in a warning
    assert "typo.example.org:443" in caplog.text
    assert "portal.example.org:443" not in caplog.text


def test_an_external_endpoint_says_the_bundle_is_not_its_store(tmp_path: Path):
    setting = ProbeEndpointsConfig(ca_bundle=tmp_path / "ca.pem")
    [record], [target] = _plan([_ep("www.example.org")], {K8S: setting})
    assert target.config.ca_bundle is None
    assert record.probed and "Mozilla" in record.note
