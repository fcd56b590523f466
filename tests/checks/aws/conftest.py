"""
Shared fixtures for the AWS checks: one moto server per test process, a fresh, empty account
inside it for every test (or one seeded account per module), reached through fake credentials
in the environment, and a fault-injecting proxy in front of moto.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import botocore.session
import pytest
from botocore.stub import Stubber

from hipaacheck.check import CheckContext, Policy
from hipaacheck.clients import Clients
from hipaacheck.config import AwsAccountConfig
from hipaacheck.lab.aws import (
    LAB_REGIONS,
    LabCredentials,
    create_isolated_account,
    start_moto_server,
)
from hipaacheck.model import Target, TargetKind


def hermetic_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep botocore away from the user's AWS files, profiles and the metadata service."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A moto server on 127.0.0.1 for this test process."""
    server, url = start_moto_server()
    yield url
    server.stop()


@pytest.fixture
def aws_creds(moto_url: str, monkeypatch: pytest.MonkeyPatch,
              tmp_path: Path) -> LabCredentials:
    """A fresh account, its fake credentials set in the environment for the default chain."""
    hermetic_aws_env(monkeypatch, tmp_path)
    creds = create_isolated_account(moto_url)
    for name, value in creds.env().items():
        monkeypatch.setenv(name, value)
    return creds


@pytest.fixture
def account(moto_url: str) -> AwsAccountConfig:
    """The inventory entry for the test account, in both lab regions."""
    return AwsAccountConfig(name="test", regions=list(LAB_REGIONS), endpoint_url=moto_url)


@pytest.fixture
def target(account: AwsAccountConfig) -> Target:
    """The AWS target the checks run against."""
    return Target(TargetKind.AWS, f"aws:{account.name}", account.name, account)


@pytest.fixture
def ctx() -> CheckContext:
    """A fresh scan context: its own clients and memo."""
    return CheckContext(clients=Clients(timeout=5), policy=Policy(),
                        logger=logging.getLogger("test.aws"),
                        clock=lambda: datetime.now(UTC), timeout=5)


DENIED_MESSAGE = "denied by the test"
"""The message stubbed errors carry; it must never reach a finding."""


@pytest.fixture
def stubbed(ctx: CheckContext, account: AwsAccountConfig
            ) -> Iterator[Callable[[str, str], Stubber]]:
    """
    A function that puts an active botocore Stubber on the scan's own client for
    (service, region); the test queues the error responses on it.

    Only for responses moto cannot produce (AccessDenied, throttling); every other client of
    the session still talks to moto. A stubbed client answers only what is queued on it.
    """
    stubbers: list[Stubber] = []

    def stub(service: str, region: str) -> Stubber:
        stubber = Stubber(ctx.clients.aws(account).client(service, region))
        stubber.activate()
        stubbers.append(stubber)
        return stubber

    yield stub
    for stubber in stubbers:
        stubber.deactivate()



# A fault-injecting proxy in front of moto: a real HTTP hop that answers chosen calls with
# AWS error responses (AccessDenied, throttling) or canned bodies moto cannot produce, and
# forwards everything else. botocore's retries, parsers and timeouts all run as in production.



PROXIED_SERVICES = ("s3", "rds", "ec2", "dynamodb", "kms", "logs", "efs", "elasticache",
                    "redshift", "opensearch", "eks", "backup", "cloudtrail",
                    "resourcegroupstaggingapi", "sts", "config")
_CREDENTIAL = re.compile(r"Credential=[^/]+/\d+/([^/]+)/([^/]+)/")


@dataclass(frozen=True)
class Seen:
    """One request the proxy received: signing service, region, operation and subject."""

    service: str
    region: str
    operation: str
    subject: str


@dataclass
class Fault:
    """An answer for matching requests instead of moto's, for the first `times` of them."""

    service: str
    operation: str | None
    region: str | None
    subject: str | None
    status: int
    code: str | None
    body: dict[str, Any] | None = None
    times: int | None = None
    hits: int = 0
    edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    """For `amend`: moto's own JSON answer, changed by this function."""

    def matches(self, seen: Seen) -> bool:
        return (seen.service == self.service and self.operation in (None, seen.operation)
                and self.region in (None, seen.region) and self.subject in (None, seen.subject)
                and (self.times is None or self.hits < self.times))


class _Operations:
    """Maps a request to its botocore service and operation name, from the API models."""

    def __init__(self) -> None:
        session = botocore.session.get_session()
        self.models: dict[str, Any] = {}
        self.routes: dict[str, list[tuple[str, re.Pattern[str], tuple[str, ...], str]]] = {}
        for name in PROXIED_SERVICES:
            model = session.get_service_model(name)
            signing = model.signing_name or name
            self.models[signing] = model
            routes = []
            for op in model.operation_names:
                http_spec = model.operation_model(op).http
                path, _, query = http_spec.get("requestUri", "/").partition("?")
                keys = tuple(q.split("=")[0] for q in query.split("&") if q)
                routes.append((http_spec.get("method", "POST"), _route(path), keys, op))
            routes.sort(key=lambda r: (-len(r[2]), -len(r[1].pattern)))
            self.routes[signing] = routes

    def resolve(self, signing: str, method: str, path: str, query: dict[str, list[str]],
                headers: Any, body: bytes) -> str:
        model = self.models.get(signing)
        if model is None:
            return ""
        protocol = model.metadata.get("protocol")
        if protocol == "json":
            return str(headers.get("X-Amz-Target", "")).rsplit(".", 1)[-1]
        if protocol in ("query", "ec2"):
            form = parse_qs(body.decode("utf-8", "replace")) if body else {}
            return (form.get("Action") or query.get("Action") or [""])[0]
        for verb, pattern, keys, op in self.routes[signing]:
            if verb == method and pattern.match(path) and all(k in query for k in keys):
                return op
        return ""


def _route(path: str) -> re.Pattern[str]:
    """A regex for a model's requestUri path: `{name}` is one segment, `{name+}` the rest."""
    pieces = re.split(r"\{[^}]+\}", path)
    holes = re.findall(r"\{[^}]+\}", path)
    pattern = ""
    for index, piece in enumerate(pieces):
        pattern += re.escape(piece)
        if index < len(holes):
            pattern += ".+" if holes[index].endswith("+}") else "[^/]+"
    return re.compile("^" + pattern.rstrip("/") + "/?$")


_OPERATIONS: _Operations | None = None


def _error_body(protocol: str, code: str) -> tuple[str, bytes, dict[str, str]]:
    message = DENIED_MESSAGE
    if protocol == "ec2":
        return ("text/xml", f"<Response><Errors><Error><Code>{code}</Code><Message>{message}"
                "</Message></Error></Errors><RequestID>r</RequestID></Response>".encode(), {})
    if protocol == "query":
        return ("text/xml", f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
                f"<Message>{message}</Message></Error><RequestId>r</RequestId>"
                "</ErrorResponse>".encode(), {})
    if protocol == "rest-xml":
        return ("application/xml", f"<Error><Code>{code}</Code><Message>{message}</Message>"
                "</Error>".encode(), {})
    body = json.dumps({"__type": code, "message": message}).encode()
    return "application/x-amz-json-1.1", body, {"x-amzn-ErrorType": code}


class FaultProxy:
    """
    A loopback HTTP proxy to moto. `deny`, `throttle` and `answer` add faults; `clear`
    removes them and the request log. Thread-safe; one per test process.
    """

    def __init__(self, upstream: str) -> None:
        global _OPERATIONS
        _OPERATIONS = _OPERATIONS or _Operations()
        self.upstream = urlsplit(upstream)
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def _handle(self) -> None:
                proxy.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
            self.seen.clear()

    def deny(self, service: str, operation: str | None = None, *, region: str | None = None,
             subject: str | None = None, code: str = "AccessDenied",
             status: int = 403) -> Fault:
        """Answer matching calls with an access-denied error (signing service names)."""
        fault = Fault(service, operation, region, subject, status, code)
        with self.lock:
            self.faults.append(fault)
        return fault

    def throttle(self, service: str, operation: str | None = None, *,
                 region: str | None = None, times: int | None = None,
                 code: str = "ThrottlingException") -> Fault:
        """Answer matching calls with a throttling error, for the first `times` of them."""
        status = 503 if code == "SlowDown" else 400
        fault = Fault(service, operation, region, None, status, code, times=times)
        with self.lock:
            self.faults.append(fault)
        return fault

    def answer(self, service: str, operation: str, body: dict[str, Any], *,
               region: str | None = None, subject: str | None = None) -> Fault:
        """Answer matching calls with `body` (JSON protocols only), as moto cannot."""
        fault = Fault(service, operation, region, subject, 200, None, body)
        with self.lock:
            self.faults.append(fault)
        return fault

    def amend(self, service: str, operation: str,
              edit: Callable[[dict[str, Any]], dict[str, Any]], *,
              region: str | None = None) -> Fault:
        """Forward matching calls to moto and answer with `edit` of moto's own JSON answer,
        where moto leaves out what AWS would say (JSON protocols only)."""
        fault = Fault(service, operation, region, None, 200, None, edit=edit)
        with self.lock:
            self.faults.append(fault)
        return fault

    def count(self, **match: str) -> int:
        """How many requests matched every given field of `Seen`."""
        with self.lock:
            return sum(all(getattr(s, k) == v for k, v in match.items()) for s in self.seen)

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        parts = urlsplit(request.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        found = _CREDENTIAL.search(request.headers.get("Authorization", ""))
        signing, region = (found.group(2), found.group(1)) if found else ("", "")
        assert _OPERATIONS is not None
        operation = _OPERATIONS.resolve(signing, request.command, parts.path, query,
                                        request.headers, body)
        # A bucket for S3; the request path for the REST services (a plan's selections).
        subject = parts.path.strip("/").split("/")[0] if signing == "s3" else parts.path
        seen = Seen(signing, region, operation, subject)
        with self.lock:
            self.seen.append(seen)
            fault = next((f for f in self.faults if f.matches(seen)), None)
            if fault:
                fault.hits += 1
        if fault is None:
            self._forward(request, body)
        elif fault.edit is not None:
            self._forward(request, body, fault.edit)
        else:
            self._fault(request, fault, signing)

    def _fault(self, request: BaseHTTPRequestHandler, fault: Fault, signing: str) -> None:
        assert _OPERATIONS is not None
        protocol = _OPERATIONS.models[signing].metadata.get("protocol", "json")
        if fault.code is None:
            content_type, payload, extra = "application/json", json.dumps(
                fault.body or {}, default=str).encode(), {}
        else:
            content_type, payload, extra = _error_body(protocol, fault.code)
        request.send_response(fault.status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(payload)))
        request.send_header("x-amzn-RequestId", "fault-proxy")
        for name, value in extra.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(payload)

    def _forward(self, request: BaseHTTPRequestHandler, body: bytes,
                 edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port,
                                                timeout=30)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("connection", "keep-alive")}
        connection.request(request.command, request.path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        if edit is not None and response.status == 200:
            payload = json.dumps(edit(json.loads(payload)), default=str).encode()
        # An edited answer no longer matches moto's checksum of it.
        dropped = ("connection", "transfer-encoding", "content-length", "server", "date",
                   *(("x-amz-crc32",) if edit is not None else ()))
        request.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in dropped:
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(payload)
        connection.close()


@pytest.fixture(scope="session")
def fault_proxy(moto_url: str) -> Iterator[FaultProxy]:
    """The fault proxy in front of this process's moto server."""
    proxy = FaultProxy(moto_url)
    yield proxy
    proxy.stop()


@pytest.fixture
def faults(fault_proxy: FaultProxy) -> Iterator[FaultProxy]:
    """The fault proxy, with no faults and an empty request log, cleared again after the test."""
    fault_proxy.clear()
    yield fault_proxy
    fault_proxy.clear()


def elapsed(since: float) -> float:
    """Seconds since `since` (a `time.monotonic()` reading)."""
    return time.monotonic() - since


@pytest.fixture(scope="module")
def module_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pytest.MonkeyPatch]:
    """A hermetic AWS environment that lasts the whole test module."""
    with pytest.MonkeyPatch.context() as patch:
        hermetic_aws_env(patch, tmp_path_factory.mktemp("aws-env"))
        yield patch


@pytest.fixture(scope="module")
def module_creds(moto_url: str, module_env: pytest.MonkeyPatch) -> LabCredentials:
    """One fresh account for the module, its credentials in the module's environment."""
    creds = create_isolated_account(moto_url)
    for name, value in creds.env().items():
        module_env.setenv(name, value)
    return creds


def new_ctx(policy: Policy | None = None, timeout: float = 5) -> CheckContext:
    """A fresh scan context: its own clients, memo and call log."""
    return CheckContext(clients=Clients(timeout=timeout), policy=policy or Policy(),
                        logger=logging.getLogger("test.aws"),
                        clock=lambda: datetime.now(UTC), timeout=timeout)


def aws_target(endpoint_url: str, name: str = "test",
               regions: tuple[str, ...] = LAB_REGIONS) -> Target:
    """The AWS target of an account reached at `endpoint_url` (moto, or the fault proxy)."""
    account = AwsAccountConfig(name=name, regions=list(regions), endpoint_url=endpoint_url)
    return Target(TargetKind.AWS, f"aws:{name}", name, account)


@pytest.fixture(scope="session")
def make_ctx() -> Callable[..., CheckContext]:
    """Build a fresh scan context (own clients and memo), optionally with a policy."""
    return new_ctx


@pytest.fixture(scope="session")
def make_target() -> Callable[..., Target]:
    """Build the AWS target of an account reached at a given endpoint."""
    return aws_target


@dataclass(frozen=True)
class ElbNetwork:
    """What a load balancer needs in moto: a VPC, two subnets and an ACM certificate."""

    vpc: str
    subnets: list[str]
    certificate: str


def elb_network(creds: LabCredentials, url: str, region: str) -> ElbNetwork:
    """A VPC with a subnet in two zones of `region` and a certificate to serve."""
    ec2 = creds.client("ec2", region, url)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                 AvailabilityZone=f"{region}{zone}")["Subnet"]["SubnetId"]
               for i, zone in ((1, "a"), (2, "b"))]
    cert = creds.client("acm", region, url).request_certificate(
        DomainName="portal.clinic.example")["CertificateArn"]
    return ElbNetwork(str(vpc), [str(s) for s in subnets], str(cert))
