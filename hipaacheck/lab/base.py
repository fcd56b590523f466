"""
What every lab component hands back when it starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LabPart:
    """
    One started lab service.

    `inventory` is a fragment of `hipaacheck.yaml` (plain data) pointing at the service; secrets
    in it appear only as `${VAR}` references whose values are in `env`. `stop` stops the service
    and is safe to call twice.
    """

    name: str
    inventory: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    stop: Callable[[], None] = lambda: None
    notes: list[str] = field(default_factory=list)
    live_endpoints: dict[str, str] = field(default_factory=dict)
    """`host:port` that this part's control plane advertises, to the lab TLS server profile
    (`modern`, `legacy`) that should answer there: the lab starts those servers and points
    the part's `probe_endpoints.connect_to` at them."""
