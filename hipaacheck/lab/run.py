"""
Start the whole built-in lab, write an inventory that points at it, and stop it again.

Every component starts in its own thread, since each waits on a real service (moto, PostgreSQL,
TLS servers, the Kubernetes API stand-in). A component that fails to start stops the others and
raises `LabError`: a demo of half a lab would show a misleading report.
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hipaacheck.errors import LabError
from hipaacheck.lab.base import LabPart
from hipaacheck.lab.discovered import start_discovered_lab

logger = logging.getLogger(__name__)


def _components() -> list[tuple[str, Callable[[Path], LabPart]]]:
    from hipaacheck.lab.aws import start_aws_lab
    from hipaacheck.lab.kubeapi import start_kubernetes_lab
    from hipaacheck.lab.logs import start_logs_lab
    from hipaacheck.lab.pg_tls import start_postgres_tls_lab
    from hipaacheck.lab.postgres import start_postgres_lab
    from hipaacheck.lab.tls import start_tls_lab

    return [("tls", start_tls_lab), ("aws", start_aws_lab), ("postgres", start_postgres_lab),
            ("kubernetes", start_kubernetes_lab), ("logs", start_logs_lab),
            ("postgres-tls", start_postgres_tls_lab)]


@dataclass
class Lab:
    """A running lab: its merged inventory, the environment its secrets live in, its parts."""

    workdir: Path
    parts: list[LabPart]
    inventory: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def write_inventory(self, path: Path) -> Path:
        """Write the lab's `hipaacheck.yaml`; secrets appear only as `${VAR}` references."""
        header = ("# Written by `hipaacheck demo`: the built-in lab's inventory.\n"
                  "# Secrets are ${VAR} references; their values live only in the demo process.\n")
        path.write_text(header + yaml.safe_dump(self.inventory, sort_keys=False))
        return path

    def write_env(self, path: Path) -> Path:
        """
        Write the lab's environment (its generated passwords and fake AWS keys) as shell
        assignments, readable by the owner only, for rescanning a lab left running.
        """
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.writelines(f"{name}={shlex.quote(value)}\n"
                              for name, value in sorted(self.env.items()))
        return path

    def stop(self) -> None:
        """Stop every component; safe to call twice."""
        for part in reversed(self.parts):
            try:
                part.stop()
            except Exception as exc:  # noqa: BLE001 - stop the rest regardless
                logger.warning("lab component %s did not stop cleanly (%s)", part.name,
                               type(exc).__name__)


def _merge(into: dict[str, Any], fragment: dict[str, Any]) -> None:
    for key, value in fragment.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif isinstance(value, list) and isinstance(into.get(key), list):
            into[key].extend(value)
        else:
            into[key] = value


def start_lab(workdir: Path, organization: str = "hipaacheck lab clinic") -> Lab:
    """Start every lab component concurrently and merge their inventories."""
    workdir.mkdir(parents=True, exist_ok=True)
    components = _components()
    parts: list[LabPart] = []
    failures: list[str] = []
    with ThreadPoolExecutor(max_workers=len(components)) as pool:
        futures = {name: pool.submit(start, workdir / name) for name, start in components}
        for name, future in futures.items():
            try:
                parts.append(future.result())
            except Exception as exc:
                logger.debug("lab component %s failed", name, exc_info=True)
                failures.append(f"{name} ({type(exc).__name__}: {exc})")
    lab = Lab(workdir, parts, {"version": 1, "organization": organization})
    if failures:
        lab.stop()
        raise LabError("the lab could not start: " + "; ".join(failures))
    try:
        discovered = start_discovered_lab(workdir / "discovered", parts)
    except LabError:
        lab.stop()
        raise
    if discovered is not None:
        parts.append(discovered.part)
    for part in parts:
        _merge(lab.inventory, part.inventory)
        lab.env.update(part.env)
    lab.inventory.setdefault("scan", {"workers": 8, "probe_timeout_seconds": 10})
    return lab
