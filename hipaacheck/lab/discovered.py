"""
Live servers behind the endpoints the lab's control planes advertise.

The Kubernetes stand-in serves Ingresses, Services and Gateways whose hosts are names like
`portal.clinic.example.com`, which resolve nowhere here. A lab part lists the ones it wants
answered (`LabPart.live_endpoints`, host:port to a server profile); this module starts one
loopback TLS server per profile, with a certificate for exactly those host names from a CA of
its own, and fills the part's `probe_endpoints` with `connect_to` and that CA bundle. The scan
then probes the discovered endpoints through the loopback servers, as an operator would probe
through a tunnel or split DNS.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hipaacheck.errors import LabError
from hipaacheck.lab.base import LabPart
from hipaacheck.lab.certs import mint_named_certificate
from hipaacheck.lab.tls import RunningServer, server_context, start_server


def _probe_settings(node: Any) -> Iterator[dict[str, Any]]:
    """Every `probe_endpoints` mapping inside an inventory fragment."""
    if isinstance(node, dict):
        setting = node.get("probe_endpoints")
        if isinstance(setting, dict):
            yield setting
        for value in node.values():
            yield from _probe_settings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _probe_settings(value)


@dataclass
class DiscoveredLab:
    """The started servers, by profile, and the lab part that stops them."""

    part: LabPart
    servers: dict[str, RunningServer]

    def connections(self) -> int:
        """Connections the servers have accepted so far."""
        return sum(server.connections for server in self.servers.values())


def start_discovered_lab(workdir: Path, parts: list[LabPart]) -> DiscoveredLab | None:
    """
    Start the servers the parts' live endpoints need and wire them into the parts' inventory
    fragments (in place); None when no part asks for any.
    """
    wanted = {address: profile for part in parts for address, profile in
              part.live_endpoints.items()}
    if not wanted:
        return None
    servers: dict[str, RunningServer] = {}
    bundles: list[Path] = []
    try:
        for profile in sorted(set(wanted.values())):
            hosts = tuple(sorted({a.rpartition(":")[0] for a, p in wanted.items()
                                  if p == profile}))
            cert, bundle = mint_named_certificate(workdir / "certs", f"discovered-{profile}",
                                                  hosts)
            servers[profile] = start_server(f"discovered-{profile}",
                                            server_context(cert, profile))
            bundles.append(bundle)
    except OSError as exc:
        for server in servers.values():
            server.stop()
        raise LabError(f"could not start the lab's discovered-endpoint servers "
                       f"({type(exc).__name__})") from exc
    trust = workdir / "certs" / "discovered-ca-bundle.pem"
    trust.write_bytes(b"".join(b.read_bytes() for b in bundles))
    for part in parts:
        routes = {address: f"{servers[profile].host}:{servers[profile].port}"
                  for address, profile in part.live_endpoints.items()}
        for setting in _probe_settings(part.inventory):
            setting.setdefault("connect_to", {}).update(routes)
            setting.setdefault("ca_bundle", str(trust))

    def stop() -> None:
        for server in servers.values():
            server.stop()

    notes = [f"{server.name}: {server.host}:{server.port} answers for "
             + ", ".join(sorted(a for a, p in wanted.items() if p == profile))
             for profile, server in servers.items()]
    return DiscoveredLab(LabPart(name="discovered", inventory={}, stop=stop, notes=notes),
                         servers)
