"""
Shared helpers of the deployment tests: the manifests' folders and a small kustomize build.

No kustomize binary ships in Debian, so `build` applies the subset of kustomize the manifests
use (resources, including other kustomization folders, and strategic-merge patches of maps),
and refuses any other kustomization field, so it can never silently differ from kustomize.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).parents[2] / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
KUSTOMIZATIONS = ("base", "nightly", "sharded", "overlays/irsa")
SUPPORTED = {"apiVersion", "kind", "resources", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _key(doc: dict[str, Any]) -> tuple[str, str, str]:
    meta = doc["metadata"]
    return (doc["kind"], meta.get("namespace", ""), meta["name"])


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        assert not isinstance(value, list), "list patches are beyond this kustomize subset"
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def build(folder: Path) -> list[dict[str, Any]]:
    """The resources a `kustomize build folder` gives, for the subset the manifests use."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text(encoding="utf-8"))
    assert set(spec) <= SUPPORTED, f"{folder}: unsupported fields {set(spec) - SUPPORTED}"
    docs: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        path = (folder / entry).resolve()
        docs += build(path) if path.is_dir() else _documents(path)
    for patch in spec.get("patches", []):
        assert set(patch) == {"path"}, "only file patches are in this kustomize subset"
        for change in _documents(folder / patch["path"]):
            matches = [d for d in docs if _key(d) == _key(change)]
            assert len(matches) == 1, f"patch {patch['path']} matches {len(matches)} resources"
            _merge(matches[0], change)
    keys = [_key(d) for d in docs]
    assert len(keys) == len(set(keys)), f"{folder}: a resource appears twice"
    return docs


@pytest.fixture(scope="session")
def built() -> dict[str, list[dict[str, Any]]]:
    """Every kustomization, built, by folder name."""
    return {name: build(KUBERNETES / name) for name in KUSTOMIZATIONS}


@pytest.fixture(scope="session")
def merge_job() -> dict[str, Any]:
    """The merge Job that runs after the shards (applied on its own)."""
    (doc,) = _documents(KUBERNETES / "sharded" / "merge-job.yaml")
    return doc
