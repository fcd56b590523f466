"""
The lab's internal PostgreSQL endpoint that speaks TLS only after STARTTLS (SSLRequest).

It is a separate small server with `ssl=on` and a self-signed certificate, so the transmission
checks probe a database connection the way they probe any internal hop.
"""

from __future__ import annotations

from pathlib import Path

from hipaacheck.lab.base import LabPart
from hipaacheck.lab.postgres import PostgresServer


def start_postgres_tls_lab(workdir: Path) -> LabPart:
    """Start a TLS-enabled PostgreSQL server and list it as a STARTTLS endpoint."""
    server = PostgresServer(workdir, ssl=True).start()
    endpoint = {
        "name": "postgres-starttls", "host": server.host, "port": server.port,
        "zone": "internal", "starttls": "postgres", "server_name": "localhost",
        "ca_bundle": str(server.cert_path),
    }
    return LabPart(name="postgres-tls", inventory={"tls": {"endpoints": [endpoint]}},
                   stop=server.stop, notes=[f"postgres-starttls: {server.host}:{server.port}"])
