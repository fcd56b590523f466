"""
Factories for read-only clients, built once per scan and handed to checks through the context.

Each client module enforces read-only access in code: AWS through a botocore `before-call`
guard, Kubernetes through an API client that refuses every method but GET, PostgreSQL through
read-only sessions. Imports are lazy so a scan that touches no AWS never imports boto3.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hipaacheck.config import AwsAccountConfig, KubernetesClusterConfig, PostgresConnection


class Clients:
    """
    Builds, caches and hands out read-only clients for the targets of one scan.
    """

    def __init__(self, *, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._aws: dict[str, Any] = {}
        self._kube: dict[str, Any] = {}

    def aws(self, account: AwsAccountConfig) -> Any:
        """The read-only `AwsSession` for an account, shared by every check in the scan."""
        from hipaacheck.clients.aws import AwsSession

        with self._lock:
            if account.name not in self._aws:
                self._aws[account.name] = AwsSession(account, timeout=self.timeout)
            return self._aws[account.name]

    def kubernetes(self, cluster: KubernetesClusterConfig) -> Any:
        """A read-only `kubernetes.client.ApiClient` for a cluster."""
        from hipaacheck.clients.kubernetes import read_only_api_client

        with self._lock:
            if cluster.name not in self._kube:
                self._kube[cluster.name] = read_only_api_client(cluster, timeout=self.timeout)
            return self._kube[cluster.name]

    @contextmanager
    def postgres(self, conn: PostgresConnection) -> Iterator[Any]:
        """A read-only psycopg connection, closed when the block ends."""
        from hipaacheck.clients.postgres import connect_read_only

        with connect_read_only(conn, timeout=self.timeout) as connection:
            yield connection

    def aws_calls(self) -> list[Any]:
        """Every AWS API call made through this factory, for the permissions audit."""
        with self._lock:
            return [call for session in self._aws.values() for call in session.calls]
