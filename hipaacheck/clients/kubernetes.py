"""
Read-only Kubernetes access: an API client that can only read, list paging, and the mapping of
API failures onto `Unknown`.

The client is read-only by construction. Its REST layer refuses every HTTP method but GET, and
the connect subresources (`exec`, `attach`, `portforward`, `proxy`) whatever the method, raising
`ReadOnlyViolation` before a byte is sent; and the methods a caller could swap out to get round
that (as `kubernetes.stream` does to run `exec`) cannot be rebound. Every request gets a
timeout, and a read that times out is not retried, so a hung API server costs one timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import urllib3
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from kubernetes.client import rest as kube_rest
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from hipaacheck.config import KubernetesClusterConfig
from hipaacheck.errors import ProbeUnavailable, ReadOnlyViolation
from hipaacheck.model import Fact, Unknown, UnknownReason

logger = logging.getLogger(__name__)

T = TypeVar("T")

READ_METHODS = frozenset({"GET"})
CONNECT_SUBRESOURCES = frozenset({"exec", "attach", "portforward", "proxy"})
"""Subresources that open a channel into a workload; refused even for GET."""
DEFAULT_PAGE_SIZE = 500


class PagingLoop(Exception):
    """The API server handed back a continue token it had already given: the list never ends."""


API_ERRORS: tuple[type[BaseException], ...] = (
    ApiException, urllib3.exceptions.HTTPError, OSError, PagingLoop, ValueError)
"""What a Kubernetes read can raise when the cluster, not the check, is at fault.

`ValueError` covers a body that is not JSON or does not fit the client's models. Catch these
around the API call alone, so a bug in a check's own code still surfaces as ERROR."""


def refuse_unless_read(method: str, url: str) -> None:
    """
    Raise `ReadOnlyViolation` unless the request is a GET of something other than a connect
    subresource. Only the path is named in the message, never the query or headers.
    """
    path = urlsplit(url).path
    if method.upper() not in READ_METHODS:
        raise ReadOnlyViolation(
            f"refused {method.upper()} {path}: the Kubernetes client is read-only")
    segments = [s for s in path.split("/") if s]
    if len(segments) >= 2 and segments[-1] in CONNECT_SUBRESOURCES:
        raise ReadOnlyViolation(
            f"refused GET {path}: {segments[-1]} opens a channel into a workload")


class _ReadOnlyRESTClient(kube_rest.RESTClientObject):
    """The REST layer every request passes through: refuses writes, adds the default timeout."""

    def __init__(self, configuration: Configuration, timeout: float) -> None:
        super().__init__(configuration)
        self.default_timeout = timeout

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        """Send a GET; refuse anything else before it is sent."""
        refuse_unless_read(method, url)
        if kwargs.get("_request_timeout") is None:
            kwargs["_request_timeout"] = self.default_timeout
        return super().request(method, url, *args, **kwargs)  # type: ignore[no-untyped-call]


class ReadOnlyApiClient(ApiClient):
    """
    A `kubernetes.client.ApiClient` that can only read.

    Requests go through `_ReadOnlyRESTClient`; after construction `call_api`, `request` and
    `rest_client` cannot be rebound, so no wrapper can route a write or an `exec` round it.
    """

    _GUARDED = frozenset({"call_api", "request", "rest_client", "param_serialize"})

    def __init__(self, configuration: Configuration, *, timeout: float) -> None:
        super().__init__(configuration)
        plain = self.rest_client
        self.rest_client = _ReadOnlyRESTClient(configuration, timeout)
        plain.close()
        self.default_timeout = timeout
        self._sealed = True

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._GUARDED and getattr(self, "_sealed", False):
            raise ReadOnlyViolation(f"refused to replace {name} on the read-only Kubernetes client")
        super().__setattr__(name, value)


def _configuration(cluster: KubernetesClusterConfig) -> Configuration:
    """A fresh `Configuration` from the cluster's kubeconfig or in-cluster credentials."""
    configuration = Configuration()
    if cluster.in_cluster:
        kube_config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration)
    else:
        path = str(cluster.kubeconfig or kube_config.KUBE_CONFIG_DEFAULT_LOCATION)
        # NOTE: an exec credential plugin (`aws eks get-token`) runs here, and the kubernetes
        # package gives it no timeout; the scan's per-check deadline is what bounds it.
        # persist_config=False: a token refresh must never write to the user's kubeconfig.
        kube_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, context=cluster.context,
            client_configuration=configuration, persist_config=False)
    # One connect retry is cheap; a read that timed out is not retried.
    configuration.retries = urllib3.Retry(total=1, connect=1, read=0, redirect=0, status=0,
                                          other=0)
    return configuration


def read_only_api_client(cluster: KubernetesClusterConfig, *, timeout: float
                         ) -> ReadOnlyApiClient:
    """
    A read-only API client for `cluster`, with `timeout` seconds on every request that does not
    set its own `_request_timeout`. Never touches the kubernetes package's global default
    configuration.

    Raises `ProbeUnavailable` when the kubeconfig (or the in-cluster credentials) cannot be
    loaded, naming the file and context but not the loader's message, which can quote the file.
    """
    try:
        configuration = _configuration(cluster)
    except (ConfigException, OSError, ValueError, KeyError, TypeError) as exc:
        where = "in-cluster credentials" if cluster.in_cluster else (
            f"kubeconfig {cluster.kubeconfig or kube_config.KUBE_CONFIG_DEFAULT_LOCATION}"
            + (f" context {cluster.context!r}" if cluster.context else ""))
        logger.info("cluster %s: cannot load %s (%s)", cluster.name, where, type(exc).__name__)
        raise ProbeUnavailable(UnknownReason.UNREACHABLE,
                               f"cannot load {where} ({type(exc).__name__})",
                               needs=f"readable {where}") from None
    return ReadOnlyApiClient(configuration, timeout=timeout)


def _page_parts(response: Any) -> tuple[list[Any], str | None]:
    """Items and continue token of a typed list or of a custom-objects dict."""
    if isinstance(response, Mapping):
        meta = response.get("metadata") or {}
        return list(response.get("items") or []), meta.get("continue") or None
    meta = response.metadata
    if meta is None:
        return list(response.items or []), None
    token = getattr(meta, "_continue", None) or getattr(meta, "var_continue", None)
    return list(response.items or []), token or None


def list_all(list_fn: Callable[..., Any], *, timeout: float, page_size: int = DEFAULT_PAGE_SIZE,
             **kwargs: Any) -> list[Any]:
    """
    Every item of a list call, fetched in pages of `page_size` with limit/continue.

    `list_fn` is a generated list method (`StorageV1Api(client).list_storage_class`) or a
    custom-objects list; `kwargs` go to every page (selectors, namespace, group...). Raises what
    the API call raises, and `PagingLoop` if the server repeats a continue token.
    """
    items: list[Any] = []
    seen: set[str] = set()
    token: str | None = None
    while True:
        page_kwargs = dict(kwargs, limit=page_size, _request_timeout=timeout)
        if token:
            page_kwargs["_continue"] = token
        page, token = _page_parts(list_fn(**page_kwargs))
        items += page
        if not token:
            return items
        if token in seen:
            raise PagingLoop("the API server repeated a continue token")
        seen.add(token)


def _timeout_or_unreachable(exc: BaseException) -> BaseException:
    """The underlying cause of a urllib3 retry failure."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        return exc.reason
    return exc


def _classify_status(status: int, needs: str) -> Unknown:
    if status == 401:
        return Unknown(UnknownReason.ACCESS_DENIED,
                       "the API server rejected the scan's credentials (HTTP 401)",
                       needs=f"valid cluster credentials allowed to {needs}")
    if status == 403:
        return Unknown(UnknownReason.ACCESS_DENIED,
                       f"the API server refused to {needs} (HTTP 403)", needs=needs)
    if status == 404:
        return Unknown(UnknownReason.NOT_SUPPORTED,
                       "the API server does not serve this resource type (HTTP 404)")
    if status == 429:
        return Unknown(UnknownReason.THROTTLED, "the API server throttled the scan (HTTP 429)")
    if status == 0:
        return Unknown(UnknownReason.UNREACHABLE,
                       "the connection failed before an HTTP answer (TLS or transport error)")
    if status >= 500:
        return Unknown(UnknownReason.UNREACHABLE, f"the API server failed (HTTP {status})")
    return Unknown(UnknownReason.UNPARSEABLE, f"the API server refused the request (HTTP {status})")


def classify_api_error(exc: BaseException, needs: str) -> Unknown:
    """
    The `Unknown` a failed Kubernetes read stands for.

    `needs` names the permission the read required (`list storage.k8s.io/storageclasses`); it
    becomes the finding's `needs` when access was denied. Details name status codes and
    exception classes only, never a response body.
    """
    if isinstance(exc, ApiException):
        return _classify_status(int(exc.status or 0), needs)
    cause = _timeout_or_unreachable(exc)
    if isinstance(cause, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ProtocolError,
                          ConnectionError)):
        return Unknown(UnknownReason.UNREACHABLE,
                       f"the API server could not be reached ({type(cause).__name__})")
    if isinstance(cause, (urllib3.exceptions.TimeoutError, TimeoutError)):
        return Unknown(UnknownReason.TIMEOUT, "the API server did not answer in time")
    if isinstance(cause, (urllib3.exceptions.HTTPError, OSError)):
        return Unknown(UnknownReason.UNREACHABLE,
                       f"the API server could not be reached ({type(cause).__name__})")
    if isinstance(cause, PagingLoop):
        return Unknown(UnknownReason.UNPARSEABLE, "the API server's paging never ended")
    return Unknown(UnknownReason.UNPARSEABLE,
                   f"the API server's answer could not be read ({type(cause).__name__})")


def observe(call: Callable[[], T], *, needs: str) -> Fact[T]:
    """
    The result of a Kubernetes read, or the `Unknown` its failure stands for.

    Wrap only the API call (typically `list_all(...)`), so that a bug in the caller's own code
    is not mistaken for an unobservable fact.
    """
    try:
        return call()
    except API_ERRORS as exc:
        unknown = classify_api_error(exc, needs)
        logger.info("kubernetes read %r unavailable: %s", needs, unknown.reason.value)
        return unknown
