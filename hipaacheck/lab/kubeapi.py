"""
A local stand-in for the Kubernetes API server, shared by the tests and the built-in lab.

`KubeApiStandIn` serves Kubernetes objects loaded from YAML (as `kubectl get -o yaml` prints
them) over plain HTTP on 127.0.0.1, under the real API's paths, so the real `kubernetes` client
works against it end to end: discovery, lists with paging and selectors, gets, pod logs, and
`metav1.Status` errors. Faults can be injected per path prefix (403, any error code, a hang), and
every request is recorded (method, path, query, status) so tests can show what a scan asked for.
The stand-in is read-only: any method but GET is answered with 405 and recorded.

NOTE: it serves no watches, no protobuf, no server-side apply and no TLS; the scan needs none of
them, and the client's TLS settings are exercised elsewhere.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from hipaacheck.errors import LabError
from hipaacheck.lab.base import LabPart

logger = logging.getLogger(__name__)

LAB_API_VERSION = "lab.hipaacheck.dev/v1"
"""The API group of fixture documents that are not Kubernetes objects (pod logs)."""

FIXTURES = Path(__file__).with_name("fixtures") / "kubernetes"
LIVE_ENDPOINTS = {
    "k8s-clinical-intakeap-9c0d1e2f3a-4b5c6d7e8f9a0b1c.elb.us-east-1.amazonaws.com:443": "modern",
    "portal.clinic.example.com:443": "modern",
    "api.clinic.example.com:443": "legacy",
}
"""Endpoints the fixtures advertise that the lab answers live (see `hipaacheck.lab.discovered`);
the cluster's `probe_endpoints` includes only these hosts, so the others are listed unprobed."""
"""The lab cluster's objects and pod logs, shipped as package data."""

SERVER_VERSION = {
    "major": "1", "minor": "29+", "gitVersion": "v1.29.6-eks-db838b0",
    "gitCommit": "2ef1bb0c4f5ba7bb0b0a0d1cf2b4e2bbd4a6e0fe", "gitTreeState": "clean",
    "buildDate": "2024-06-11T19:22:46Z", "goVersion": "go1.21.10", "compiler": "gc",
    "platform": "linux/amd64",
}
LAB_USER = "hipaacheck:lab-reader"
"""The user name the stand-in puts in its 403 messages."""

PodLogKey = tuple[str, str, str, bool]
"""(namespace, pod, container, previous)."""

_WRITE_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_UNAUTHENTICATED_PATHS = ("/version", "/healthz", "/livez", "/readyz")
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
            405: "MethodNotAllowed", 409: "Conflict", 410: "Expired", 422: "Invalid",
            429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
            504: "Timeout"}


@dataclass(frozen=True)
class ResourceType:
    """
    One resource type the stand-in serves, as discovery describes it.
    """

    group: str
    """The API group; empty for the core group."""
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    builtin: bool = True
    """Built-in types drop `apiVersion` and `kind` from list items, as the real server does."""

    @property
    def group_version(self) -> str:
        """`v1` for the core group, `group/version` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """The plural qualified by its group, as the server names it in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def discovery(self) -> dict[str, Any]:
        """This type's entry in an `APIResourceList`."""
        entry: dict[str, Any] = {"name": self.plural, "singularName": self.kind.lower(),
                                 "namespaced": self.namespaced, "kind": self.kind,
                                 "verbs": list(_WRITE_VERBS)}
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        return entry


def _types(group: str, version: str, *rows: tuple[str, str, bool, tuple[str, ...]]
           ) -> list[ResourceType]:
    return [ResourceType(group, version, plural, kind, namespaced, short)
            for plural, kind, namespaced, short in rows]


BUILTIN_TYPES: tuple[ResourceType, ...] = tuple(
    _types("", "v1",
           ("namespaces", "Namespace", False, ("ns",)), ("nodes", "Node", False, ("no",)),
           ("pods", "Pod", True, ("po",)), ("services", "Service", True, ("svc",)),
           ("endpoints", "Endpoints", True, ("ep",)), ("configmaps", "ConfigMap", True, ("cm",)),
           ("secrets", "Secret", True, ()), ("serviceaccounts", "ServiceAccount", True, ("sa",)),
           ("persistentvolumes", "PersistentVolume", False, ("pv",)),
           ("persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",)),
           ("events", "Event", True, ("ev",)))
    + _types("apps", "v1",
             ("deployments", "Deployment", True, ("deploy",)),
             ("statefulsets", "StatefulSet", True, ("sts",)),
             ("daemonsets", "DaemonSet", True, ("ds",)),
             ("replicasets", "ReplicaSet", True, ("rs",)))
    + _types("batch", "v1", ("jobs", "Job", True, ()), ("cronjobs", "CronJob", True, ("cj",)))
    + _types("networking.k8s.io", "v1",
             ("ingresses", "Ingress", True, ("ing",)),
             ("ingressclasses", "IngressClass", False, ()),
             ("networkpolicies", "NetworkPolicy", True, ("netpol",)))
    + _types("storage.k8s.io", "v1",
             ("storageclasses", "StorageClass", False, ("sc",)),
             ("csidrivers", "CSIDriver", False, ()),
             ("volumeattachments", "VolumeAttachment", False, ()))
    + _types("rbac.authorization.k8s.io", "v1",
             ("roles", "Role", True, ()), ("rolebindings", "RoleBinding", True, ()),
             ("clusterroles", "ClusterRole", False, ()),
             ("clusterrolebindings", "ClusterRoleBinding", False, ()))
    + _types("policy", "v1", ("poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",)))
    + _types("apiextensions.k8s.io", "v1",
             ("customresourcedefinitions", "CustomResourceDefinition", False, ("crd",))))

# Fields the real server lets a fieldSelector name, beyond metadata.name and metadata.namespace.
_SELECTABLE_FIELDS: dict[str, frozenset[str]] = {
    "Pod": frozenset({"spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                      "spec.serviceAccountName", "status.phase", "status.podIP"}),
    "Secret": frozenset({"type"}),
    "Namespace": frozenset({"status.phase"}),
    "Node": frozenset({"spec.unschedulable"}),
    "Event": frozenset({"involvedObject.kind", "involvedObject.name",
                        "involvedObject.namespace", "reason", "type"}),
}


class _ApiError(Exception):
    """An error answered as a `metav1.Status` body."""

    def __init__(self, code: int, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = dict(details or {})


def status_body(code: int, message: str, details: Mapping[str, Any] | None = None
                ) -> dict[str, Any]:
    """A `metav1.Status` failure body, as the real API server sends with an error code."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "message": message,
                            "reason": _REASONS.get(code, "Unknown"), "code": code}
    if details:
        body["details"] = dict(details)
    return body


# --- the object catalogue ---------------------------------------------------------------------

def _split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def _guess_plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and lower[-2:-1] not in "aeiou":
        return lower[:-1] + "ies"
    return lower + "s"


def _crd_types(crd: Mapping[str, Any]) -> list[ResourceType]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    return [ResourceType(spec.get("group", ""), v["name"], names["plural"], names["kind"],
                         spec.get("scope") == "Namespaced", tuple(names.get("shortNames", ())),
                         builtin=False)
            for v in spec.get("versions", []) if v.get("served", True)]


def _sort_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


class _Catalog:
    """The served types and objects, immutable once built."""

    def __init__(self, source: Iterable[Mapping[str, Any]]) -> None:
        objects = [copy.deepcopy(dict(o)) for o in source]
        self.types: dict[tuple[str, str, str], ResourceType] = {}
        for rtype in BUILTIN_TYPES:
            self._add_type(rtype)
        for obj in objects:
            if obj.get("kind") == "CustomResourceDefinition":
                for rtype in _crd_types(obj):
                    self._add_type(rtype)
        self.items: dict[ResourceType, list[dict[str, Any]]] = {}
        for obj in objects:
            self.items.setdefault(self._type_of(obj), []).append(obj)
        for items in self.items.values():
            items.sort(key=_sort_key)
        versions = [str((o.get("metadata") or {}).get("resourceVersion", "")) for o in objects]
        self.resource_version = str(max((int(v) for v in versions if v.isdigit()), default=1000)
                                    + 1)

    def _add_type(self, rtype: ResourceType) -> None:
        self.types.setdefault((rtype.group, rtype.version, rtype.plural), rtype)

    def _type_of(self, obj: Mapping[str, Any]) -> ResourceType:
        group, version = _split_api_version(str(obj["apiVersion"]))
        kind = str(obj["kind"])
        for rtype in self.types.values():
            if (rtype.group, rtype.version, rtype.kind) == (group, version, kind):
                return rtype
        # A kind with neither a built-in entry nor a CRD: guess its plural and scope.
        namespaced = bool((obj.get("metadata") or {}).get("namespace"))
        rtype = ResourceType(group, version, _guess_plural(kind), kind, namespaced, builtin=False)
        self._add_type(rtype)
        return rtype

    def type_for(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The type served under a group, version and plural, if any."""
        return self.types.get((group, version, plural))

    def group_versions(self) -> dict[str, list[str]]:
        """Every served group (core excluded) and its versions."""
        groups: dict[str, list[str]] = {}
        for rtype in self.types.values():
            if rtype.group and rtype.version not in groups.setdefault(rtype.group, []):
                groups[rtype.group].append(rtype.version)
        return groups

    def resources(self, group: str, version: str) -> list[ResourceType]:
        """The types of one group version, in discovery order."""
        return [t for t in self.types.values() if (t.group, t.version) == (group, version)]

    def find(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object of `rtype` with this name (and namespace), if it exists."""
        for obj in self.items.get(rtype, []):
            meta = obj.get("metadata") or {}
            if meta.get("name") == name and (meta.get("namespace") or None) == namespace:
                return obj
        return None


# --- selectors --------------------------------------------------------------------------------

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_EQUALITY = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*([-A-Za-z0-9_.]*)\s*$")
_SET = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(([^)]*)\)\s*$")
_EXISTS = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")

Predicate = Callable[[Mapping[str, Any]], bool]


def _split_requirements(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


def _label_requirement(text: str) -> Predicate:
    if match := _EQUALITY.match(text):
        key, op, value = match.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _SET.match(text):
        key, op, values_text = match.groups()
        values = {v.strip() for v in values_text.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _EXISTS.match(text):
        negate, key = match.groups()
        if negate:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise _ApiError(400, f"unable to parse requirement: {text.strip()!r}")


def parse_label_selector(text: str) -> list[Predicate]:
    """
    Predicates over a labels mapping for a `labelSelector`: `k=v`, `k==v`, `k!=v`, `k in (a,b)`,
    `k notin (a,b)`, `k` and `!k`, joined by commas.
    """
    return [_label_requirement(part) for part in _split_requirements(text)]


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if isinstance(node, bool):
        return "true" if node else "false"
    return "" if node is None else str(node)


def parse_field_selector(text: str, kind: str) -> list[Predicate]:
    """
    Predicates over whole objects for a `fieldSelector` with `=`, `==` and `!=`, limited to the
    fields the real server accepts for `kind` (always `metadata.name` and `metadata.namespace`).
    """
    allowed = {"metadata.name", "metadata.namespace"} | _SELECTABLE_FIELDS.get(kind, frozenset())
    predicates: list[Predicate] = []
    for part in _split_requirements(text):
        match = re.match(r"^\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not match:
            raise _ApiError(400, f"invalid field selector: {part.strip()!r}")
        path, op, value = match.groups()
        if path not in allowed:
            raise _ApiError(400, f"field label not supported: {path}")
        predicates.append(_field_predicate(path, op != "!=", value))
    return predicates


def _field_predicate(path: str, equal: bool, value: str) -> Predicate:
    return lambda obj: (_field_value(obj, path) == value) == equal


# --- paging -----------------------------------------------------------------------------------

def _query_digest(path: str, query: Mapping[str, str]) -> str:
    fixed = {k: v for k, v in sorted(query.items()) if k in ("labelSelector", "fieldSelector")}
    return hashlib.sha256(json.dumps([path, fixed]).encode()).hexdigest()[:16]


def _encode_continue(offset: int, resource_version: str, digest: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": resource_version, "start": offset,
                      "q": digest}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str, digest: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        offset = int(data["start"])
    except (ValueError, KeyError, TypeError):
        raise _ApiError(400, "continue key is not valid: incorrect encoded start resourceVersion"
                        ) from None
    if data.get("q") != digest or offset < 0:
        raise _ApiError(400, "continue key is not valid: the query does not match the token")
    return offset


def _int_param(query: Mapping[str, str], name: str) -> int | None:
    if not query.get(name):
        return None
    try:
        value = int(query[name])
    except ValueError:
        raise _ApiError(400, f"{name}: invalid value {query[name]!r}") from None
    if value < 0:
        raise _ApiError(400, f"{name}: must be greater than or equal to 0")
    return value


# --- faults and the request log ---------------------------------------------------------------

@dataclass(frozen=True)
class Fault:
    """A failure injected for every request whose path starts with a prefix."""

    kind: Literal["forbid", "error", "hang"]
    code: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stand-in received. Headers are never recorded."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    status: int = 0
    """The HTTP status answered; 0 when the request was left hanging."""


# --- routing ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Route:
    rtype: ResourceType
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None

    @property
    def verb(self) -> str:
        """The RBAC verb the request needs: list for a collection, get for one object."""
        return "list" if self.name is None else "get"

    def not_found(self) -> _ApiError:
        """The 404 the real server answers for a missing object."""
        return _ApiError(404, f'{self.rtype.qualified} "{self.name}" not found',
                         {"name": self.name, "group": self.rtype.group,
                          "kind": self.rtype.plural})

    def forbidden(self) -> _ApiError:
        """The 403 the real server answers when RBAC denies this request."""
        resource = self.rtype.plural + (f"/{self.subresource}" if self.subresource else "")
        subject = self.rtype.qualified + (f' "{self.name}"' if self.name else "")
        scope = (f'in the namespace "{self.namespace}"' if self.namespace
                 else "at the cluster scope")
        message = (f'{subject} is forbidden: User "{LAB_USER}" cannot {self.verb} resource '
                   f'"{resource}" in API group "{self.rtype.group}" {scope}')
        details = {"group": self.rtype.group, "kind": self.rtype.plural}
        if self.name:
            details["name"] = self.name
        return _ApiError(403, message, details)


_NO_SUCH_PATH = "the server could not find the requested resource"


def _name_and_subresource(parts: list[str]) -> tuple[str | None, str | None]:
    """The object name and subresource among the segments after a resource's plural."""
    padded: list[str | None] = [*parts, None, None]
    return padded[0], padded[1]


def _resource_route(catalog: _Catalog, group: str, version: str, rest: list[str]) -> _Route:
    """Route `[namespaces/NS/]PLURAL[/NAME[/SUBRESOURCE]]` within one group version."""
    if rest[0] == "namespaces" and len(rest) >= 3:
        rtype = catalog.type_for(group, version, rest[2])
        if rtype is not None and rtype.namespaced and len(rest) <= 5:
            return _Route(rtype, rest[1], *_name_and_subresource(rest[3:]))
        if rest[2] in ("status", "finalize") and len(rest) == 3 and not group:
            namespaces = catalog.type_for("", "v1", "namespaces")
            assert namespaces is not None
            return _Route(namespaces, None, rest[1], rest[2])
        raise _ApiError(404, _NO_SUCH_PATH)
    rtype = catalog.type_for(group, version, rest[0])
    if rtype is None or len(rest) > 3 or (rtype.namespaced and len(rest) > 1):
        raise _ApiError(404, _NO_SUCH_PATH)
    return _Route(rtype, None, *_name_and_subresource(rest[1:]))


def _route(catalog: _Catalog, path: str) -> _Route | None:
    """The resource a path names, or None for a discovery path; `_ApiError` 404 otherwise."""
    segs = [unquote(s) for s in path.split("/") if s]
    if segs[:2] == ["api", "v1"] and len(segs) > 2:
        return _resource_route(catalog, "", "v1", segs[2:])
    if segs[:1] == ["apis"] and len(segs) > 3:
        return _resource_route(catalog, segs[1], segs[2], segs[3:])
    return None


# --- the HTTP handler -------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    """Answers one connection's requests on behalf of the stand-in."""

    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        """Serve a read. The request is recorded before it is answered, so a client that has
        its answer always finds its request in the log."""
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        answer = self._answer_get(url.path, query)
        if answer is None:
            return
        code, payload = answer
        self.server.standin._record("GET", url.path, query, code)
        if isinstance(payload, str):
            self._send(code, payload.encode(), "text/plain")
        else:
            self._send_json(code, payload)

    def _refuse_write(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if 0 < length <= 16 * 1024 * 1024:
            self.rfile.read(length)
        self.close_connection = True
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        self.server.standin._record(self.command, url.path, query, 405)
        body = status_body(405, f"the lab API stand-in is read-only: {self.command} refused")
        self._send_json(405, body, head=self.command == "HEAD")

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _refuse_write

    def _answer_get(self, path: str, query: dict[str, str]
                    ) -> tuple[int, Mapping[str, Any] | str] | None:
        """The status and body for one GET, or None when the request is left hanging."""
        standin = self.server.standin
        try:
            if not path.startswith(_UNAUTHENTICATED_PATHS) and not standin._authorized(
                    self.headers.get("Authorization")):
                raise _ApiError(401, "Unauthorized")
            fault = standin._fault_for(path)
            if fault is not None and fault.kind == "hang":
                standin._record("GET", path, query, 0)
                standin._stopping.wait(fault.seconds)
                self.close_connection = True
                return None
            return standin._answer(path, query, fault)
        except _ApiError as exc:
            return exc.code, status_body(exc.code, exc.message, exc.details)
        except Exception:  # a stand-in bug answers 500, as a real server would
            logger.warning("kube stand-in: internal error serving %s", path, exc_info=True)
            return 500, status_body(500, "Internal error occurred")

    def _send_json(self, code: int, body: Mapping[str, Any], *, head: bool = False) -> None:
        self._send(code, json.dumps(body).encode(), "application/json", head=head)

    def _send(self, code: int, data: bytes, content_type: str, *, head: bool = False) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", "0" if head else str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        if self.close_connection:
            # Said out loud, so the client does not reuse a connection about to be closed.
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def setup(self) -> None:
        """Register the connection, so `stop()` can close it even while it is kept alive."""
        super().setup()
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        """Forget the connection once it is done."""
        try:
            super().finish()
        finally:
            self.server.track(self.connection, open_=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Send the access log to the debug log instead of stderr."""
        logger.debug("kube stand-in: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, standin: KubeApiStandIn) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.standin = standin
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        """Add or remove a client connection from the set `close_connections` closes."""
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut every open client connection, ending keep-alive sessions."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer (a timed-out test) is not worth a traceback."""
        logger.debug("kube stand-in: connection from %s ended abruptly", client_address)


# --- the stand-in -----------------------------------------------------------------------------

class KubeApiStandIn:
    """
    A local Kubernetes API server serving `objects`, read-only, on 127.0.0.1.

    `pod_logs` maps (namespace, pod, container, previous) to the text of that container's log.
    With `token`, every request but `/version` and health checks needs `Authorization: Bearer
    <token>` and is refused with 401 otherwise. `hang_seconds` bounds how long a hung request
    waits before the connection is closed (the client's timeout is meant to fire first).
    """

    def __init__(self, objects: list[dict[str, Any]], *,
                 pod_logs: dict[PodLogKey, str] | None = None, token: str | None = None,
                 hang_seconds: float = 30.0) -> None:
        self._catalog = _Catalog(objects)
        self._pod_logs = dict(pod_logs or {})
        self._token = token
        self._hang_seconds = hang_seconds
        self._lock = threading.Lock()
        self._faults: dict[str, Fault] = {}
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # lifecycle

    def start(self) -> str:
        """Start serving on an ephemeral port; return the base URL (`http://127.0.0.1:PORT`)."""
        if self._server is not None:
            return self.url
        self._stopping.clear()
        self._server = _Server(self)
        port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={
            "poll_interval": 0.05}, name=f"kube-standin-{port}", daemon=True)
        self._thread.start()
        logger.debug("kube stand-in serving %d objects at %s", self.object_count, self.url)
        return self.url

    def stop(self) -> None:
        """Stop serving and release hung requests. Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def object_count(self) -> int:
        """How many objects the stand-in serves."""
        return sum(len(items) for items in self._catalog.items.values())

    # faults and the request log

    def forbid(self, path_prefix: str) -> None:
        """Answer 403 Forbidden to every request whose path starts with `path_prefix`."""
        self._set_fault(path_prefix, Fault("forbid", 403))

    def fail(self, path_prefix: str, code: int = 500) -> None:
        """Answer `code` (a Status failure) to every request under `path_prefix`."""
        self._set_fault(path_prefix, Fault("error", code))

    def hang(self, path_prefix: str, seconds: float | None = None) -> None:
        """Leave every request under `path_prefix` unanswered until the client gives up."""
        self._set_fault(path_prefix, Fault("hang", 0, seconds or self._hang_seconds))

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        with self._lock:
            self._faults.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in order."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the requests received so far."""
        with self._lock:
            self._requests.clear()

    def _set_fault(self, path_prefix: str, fault: Fault) -> None:
        if not path_prefix.startswith("/"):
            raise ValueError("a fault's path prefix starts with '/'")
        with self._lock:
            self._faults[path_prefix] = fault

    def _fault_for(self, path: str) -> Fault | None:
        with self._lock:
            matches = [p for p in self._faults if path.startswith(p)]
            return self._faults[max(matches, key=len)] if matches else None

    def _record(self, method: str, path: str, query: dict[str, str], status: int) -> None:
        with self._lock:
            self._requests.append(RecordedRequest(method, path, query, status))

    def _authorized(self, header: str | None) -> bool:
        if self._token is None:
            return True
        scheme, _, presented = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            presented.strip().encode(), self._token.encode())

    # answers

    def _answer(self, path: str, query: dict[str, str], fault: Fault | None
                ) -> tuple[int, dict[str, Any] | str]:
        route = _route(self._catalog, path)
        if fault is not None:
            if fault.kind == "forbid" and route is not None:
                raise route.forbidden()
            message = ("forbidden" if fault.code == 403 else
                       "Internal error occurred: the lab stand-in was told to fail this path")
            raise _ApiError(fault.code, message)
        if route is None:
            return 200, self._discovery(path)
        if query.get("watch") in ("true", "1"):
            raise _ApiError(400, "the lab API stand-in does not serve watches")
        if route.name is None:
            return 200, self._list(route, path, query)
        if route.subresource == "log" and route.rtype.plural == "pods":
            return 200, self._pod_log(route, query)
        if route.subresource not in (None, "status"):
            raise _ApiError(404, _NO_SUCH_PATH)
        obj = self._catalog.find(route.rtype, route.namespace, route.name)
        if obj is None:
            raise route.not_found()
        return 200, obj

    def _discovery(self, path: str) -> dict[str, Any] | str:
        segs = [s for s in path.split("/") if s]
        groups = self._catalog.group_versions()
        if segs == ["version"]:
            return dict(SERVER_VERSION)
        if segs and segs[0] in ("healthz", "livez", "readyz"):
            return "ok"
        if segs == ["api"]:
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": self.url.split("//", 1)[-1]}]}
        if segs == ["apis"]:
            return {"kind": "APIGroupList", "apiVersion": "v1",
                    "groups": [_group_entry(g, v) for g, v in groups.items()]}
        if len(segs) == 2 and segs[0] == "apis" and segs[1] in groups:
            return {"kind": "APIGroup", "apiVersion": "v1",
                    **_group_entry(segs[1], groups[segs[1]])}
        if segs == ["api", "v1"] or (len(segs) == 3 and segs[0] == "apis"
                                     and segs[2] in groups.get(segs[1], [])):
            group, version = ("", "v1") if segs[0] == "api" else (segs[1], segs[2])
            return self._resource_list(group, version)
        raise _ApiError(404, _NO_SUCH_PATH)

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources = [t.discovery() for t in self._catalog.resources(group, version)]
        if not group:
            resources.append({"name": "pods/log", "singularName": "", "namespaced": True,
                              "kind": "Pod", "verbs": ["get"]})
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version,
                "resources": resources}

    def _list(self, route: _Route, path: str, query: dict[str, str]) -> dict[str, Any]:
        rtype = route.rtype
        labels = parse_label_selector(query.get("labelSelector", ""))
        fields = parse_field_selector(query.get("fieldSelector", ""), rtype.kind)
        items = [obj for obj in self._catalog.items.get(rtype, [])
                 if (route.namespace is None
                     or (obj.get("metadata") or {}).get("namespace") == route.namespace)
                 and all(p((obj.get("metadata") or {}).get("labels") or {}) for p in labels)
                 and all(p(obj) for p in fields)]
        digest = _query_digest(path, query)
        start = _decode_continue(query["continue"], digest) if query.get("continue") else 0
        limit = _int_param(query, "limit") or len(items)
        page, rest = items[start:start + limit], items[start + limit:]
        meta: dict[str, Any] = {"resourceVersion": self._catalog.resource_version}
        if rest:
            meta["continue"] = _encode_continue(start + limit, meta["resourceVersion"], digest)
            if not labels and not fields:
                meta["remainingItemCount"] = len(rest)
        return {"kind": f"{rtype.kind}List", "apiVersion": rtype.group_version,
                "metadata": meta, "items": [_list_item(rtype, obj) for obj in page]}

    def _pod_log(self, route: _Route, query: dict[str, str]) -> str:
        assert route.name is not None
        pod = self._catalog.find(route.rtype, route.namespace, route.name)
        if pod is None:
            raise route.not_found()
        container = _log_container(pod, route.name, query.get("container"))
        previous = query.get("previous") in ("true", "1")
        key = (route.namespace or "", route.name, container, previous)
        text = self._pod_logs.get(key)
        if text is None and previous:
            raise _ApiError(400, f'previous terminated container "{container}" in pod '
                                 f'"{route.name}" not found')
        return _trim_log(text or "", _int_param(query, "tailLines"),
                         _int_param(query, "limitBytes"))


def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def _list_item(rtype: ResourceType, obj: Mapping[str, Any]) -> Mapping[str, Any]:
    if not rtype.builtin:
        return obj
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}


def _log_container(pod: Mapping[str, Any], pod_name: str, requested: str | None) -> str:
    spec = pod.get("spec") or {}
    names = [c.get("name") for c in spec.get("containers", []) + spec.get("initContainers", [])]
    if not requested:
        containers = [c.get("name") for c in spec.get("containers", [])]
        if len(containers) != 1:
            raise _ApiError(400, f"a container name must be specified for pod {pod_name}, "
                                 f"choose one of: [{' '.join(map(str, containers))}]")
        return str(containers[0])
    if requested not in names:
        raise _ApiError(400, f"container {requested} is not valid for pod {pod_name}")
    return requested


def _trim_log(text: str, tail_lines: int | None, limit_bytes: int | None) -> str:
    if tail_lines is not None:
        lines = text.splitlines(keepends=True)
        text = "".join(lines[-tail_lines:]) if tail_lines else ""
    if limit_bytes:
        text = text.encode()[:limit_bytes].decode(errors="ignore")
    return text


# --- fixtures ---------------------------------------------------------------------------------

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

def _fixture_files(dir_or_files: Path | str | Iterable[Path | str]) -> list[Path]:
    if isinstance(dir_or_files, (str, os.PathLike)):
        dir_or_files = [dir_or_files]
    files: list[Path] = []
    for entry in map(Path, dir_or_files):
        if entry.is_dir():
            files += sorted(p for p in entry.rglob("*") if p.suffix in (".yaml", ".yml"))
        else:
            files.append(entry)
    return files


def _documents(dir_or_files: Path | str | Iterable[Path | str]
               ) -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in _fixture_files(dir_or_files):
        try:
            docs = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER))
        except (OSError, yaml.YAMLError) as exc:
            raise LabError(f"{path}: cannot read Kubernetes fixtures ({type(exc).__name__})"
                           ) from None
        for doc in docs:
            if doc is None:
                continue
            if not isinstance(doc, dict):
                raise LabError(f"{path}: a fixture document must be a mapping")
            yield path, doc


def load_objects(dir_or_files: Path | str | Iterable[Path | str]) -> list[dict[str, Any]]:
    """
    The Kubernetes objects in YAML files (a directory is read recursively), with `kind: List`
    documents flattened into their items. Lab documents (pod logs) are left out.
    """
    objects: list[dict[str, Any]] = []
    for path, doc in _documents(dir_or_files):
        if doc.get("apiVersion") == LAB_API_VERSION:
            continue
        items = doc.get("items") if str(doc.get("kind", "")).endswith("List") else [doc]
        for obj in items or []:
            if not (isinstance(obj, dict) and obj.get("apiVersion") and obj.get("kind")
                    and (obj.get("metadata") or {}).get("name")):
                raise LabError(f"{path}: an object lacks apiVersion, kind or metadata.name")
            objects.append(obj)
    return objects


FIXTURE_TIME = datetime(2024, 7, 2, tzinfo=UTC)
"""The moment the fixtures describe: the check tests judge them with this clock."""
_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def rebase_backups(objects: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """
    The objects with every timestamp of the Velero ones moved from `FIXTURE_TIME` to `now`,
    so the lab's backups are as recent for a scan today as the fixtures make them on their day.
    """
    shift = now - FIXTURE_TIME

    def moved(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: moved(v) for k, v in node.items()}
        if isinstance(node, list):
            return [moved(v) for v in node]
        if isinstance(node, str) and _STAMP.match(node):
            stamp = datetime.strptime(node, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) + shift
            return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        return node

    return [moved(o) if str(o.get("apiVersion", "")).startswith("velero.io/") else o
            for o in objects]


def load_pod_logs(dir_or_files: Path | str | Iterable[Path | str]) -> dict[PodLogKey, str]:
    """
    Pod logs from `PodLogs` documents of the lab's own API group:
    `metadata: {namespace, name}` and `containers: [{name, previous, text}]`.
    """
    logs: dict[PodLogKey, str] = {}
    for path, doc in _documents(dir_or_files):
        if doc.get("apiVersion") != LAB_API_VERSION or doc.get("kind") != "PodLogs":
            continue
        meta = doc.get("metadata") or {}
        for entry in doc.get("containers") or []:
            key = (str(meta.get("namespace", "")), str(meta.get("name", "")),
                   str(entry.get("name", "")), bool(entry.get("previous", False)))
            logs[key] = str(entry.get("text", ""))
    return logs


def write_kubeconfig(path: Path | str, server_url: str, *, context: str = "lab",
                     token: str | None = None) -> Path:
    """
    Write a kubeconfig (owner-only permissions) with one cluster, user and context named after
    `context`, pointing at `server_url` and authenticating with `token` when given.
    """
    path = Path(path)
    user: dict[str, Any] = {"token": token} if token else {}
    config = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": context, "cluster": {"server": server_url}}],
        "users": [{"name": f"{context}-reader", "user": user}],
        "contexts": [{"name": context, "context": {"cluster": context,
                                                   "user": f"{context}-reader"}}],
        "current-context": context,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        yaml.safe_dump(config, handle, sort_keys=False)
    return path


def start_kubernetes_lab(workdir: Path) -> LabPart:
    """
    Start the stand-in serving the lab cluster's fixtures and write its kubeconfig in `workdir`.

    The bearer token is random per start and lives only in the kubeconfig (owner-only).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    objects = rebase_backups(load_objects(FIXTURES), datetime.now(UTC))
    standin = KubeApiStandIn(objects, pod_logs=load_pod_logs(FIXTURES), token=token)
    url = standin.start()
    try:
        kubeconfig = write_kubeconfig(workdir / "kubeconfig-lab.yaml", url, context="lab",
                                      token=token)
    except OSError as exc:
        standin.stop()
        raise LabError(f"cannot write the lab kubeconfig in {workdir} ({type(exc).__name__})"
                       ) from None
    inventory = {"kubernetes": {"clusters": [
        {"name": "lab", "kubeconfig": str(kubeconfig), "context": "lab",
         "probe_endpoints": {"zone": "internal",
                             "include": sorted({a.rpartition(":")[0] for a in LIVE_ENDPOINTS})}}]}}
    notes = [(f"Kubernetes API stand-in at {url} serving {standin.object_count} objects "
              f"(kubeconfig {kubeconfig})")]
    return LabPart(name="kubernetes", inventory=inventory, stop=standin.stop, notes=notes,
                   live_endpoints=dict(LIVE_ENDPOINTS))
