"""
The Kubernetes manifests validate offline, grant only generated read-only permissions, run
hardened pods, and call the CLI with options it has.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer

from hipaacheck import __version__
from hipaacheck.cli import app
from hipaacheck.config import parse_inventory
from hipaacheck.render import FORMATS

DEPLOY = Path(__file__).parents[2] / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
VERSIONS = ("1.31.0", kubernetes_validate.latest_version())
"""The oldest Kubernetes with every field used here GA or beta-on (podFailurePolicy, timeZone,
backoffLimitPerIndex), and the newest schema the validator ships."""
SECRET_NAMES = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.IGNORECASE)


def _all(built, merge_job) -> list[dict[str, Any]]:
    return [doc for docs in built.values() for doc in docs] + [merge_job]


def _pod_specs(docs) -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for doc in docs:
        if doc["kind"] == "CronJob":
            specs.append((doc["metadata"]["name"], doc["spec"]["jobTemplate"]["spec"]))
        elif doc["kind"] == "Job":
            specs.append((doc["metadata"]["name"], doc["spec"]))
    return [(name, job["template"]["spec"]) for name, job in specs]


def _find(docs, kind: str, name: str | None = None) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    return doc


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates_against_the_openapi_schema(built, merge_job, version):
    for doc in _all(built, merge_job):
        kubernetes_validate.validate(doc, version, strict=True)


def test_a_schema_violation_would_be_caught(merge_job):
    bad = {**merge_job, "spec": {**merge_job["spec"], "completionz": 3}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, VERSIONS[0], strict=True)


def test_committed_cluster_role_is_the_generated_one():
    spec = importlib.util.spec_from_file_location("generate_rbac", DEPLOY / "generate_rbac.py")
    assert spec and spec.loader
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    committed = (KUBERNETES / "base" / "clusterrole.yaml").read_text(encoding="utf-8")
    assert committed == generator.generate(), "run: python deploy/generate_rbac.py"


def test_the_scanner_may_only_read(built, merge_job):
    docs = _all(built, merge_job)
    role = _find(built["base"], "ClusterRole")
    for rule in role["rules"]:
        assert set(rule["verbs"]) <= {"get", "list", "watch"}
        assert "*" not in rule["resources"] and "pods/exec" not in rule["resources"]
    assert {d["kind"] for d in docs} & {"Role", "RoleBinding", "Secret"} == set()
    binding = _find(built["base"], "ClusterRoleBinding")
    account = _find(built["base"], "ServiceAccount")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole", "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": account["metadata"]["namespace"]}]


def test_inventory_in_the_config_map_is_a_valid_inventory(built):
    config = _find(built["base"], "ConfigMap", "hipaacheck-inventory")
    text = config["data"]["hipaacheck.yaml"]
    names = set(re.findall(r"\$\{([A-Z_]+)\}", text))
    inventory = parse_inventory(text, "configmap.yaml", env={n: "placeholder" for n in names})
    assert any(c.in_cluster for c in inventory.kubernetes.clusters)
    assert inventory.targets()


def test_pods_are_hardened_and_take_credentials_only_from_the_secret(built, merge_job):
    specs = _pod_specs(_all(built, merge_job))
    assert {name for name, _ in specs} == {"hipaacheck-nightly", "hipaacheck-shards",
                                           "hipaacheck-merge"}
    for name, pod in specs:
        assert pod["serviceAccountName"] == "hipaacheck" and pod["restartPolicy"] == "Never"
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (container,) = pod["containers"]
        assert container["image"] == f"hipaacheck:{__version__}", name
        assert container["securityContext"] == {"allowPrivilegeEscalation": False,
                                                "readOnlyRootFilesystem": True,
                                                "capabilities": {"drop": ["ALL"]}}
        assert "memory" in container["resources"]["limits"]
        for env in container.get("env", []):
            assert not SECRET_NAMES.search(env["name"]), f"{name}: {env['name']} in plain text"
        for source in container.get("envFrom", []):
            assert source == {"secretRef": {"name": "hipaacheck-credentials", "optional": True}}


def test_irsa_overlay_only_annotates_the_service_account(built):
    account = _find(built["overlays/irsa"], "ServiceAccount")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith(
        "arn:aws:iam::")
    strip = [d for d in built["overlays/irsa"] if d["kind"] != "ServiceAccount"]
    assert strip == [d for d in built["nightly"] if d["kind"] != "ServiceAccount"]


def test_indexed_job_runs_as_many_shards_as_it_says(built):
    job = _find(built["sharded"], "Job", "hipaacheck-shards")
    spec = job["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    shards = {e["name"]: e["value"] for e in container["env"]}["SHARDS"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == int(shards)


def _cli_params(command: str) -> dict[str, Any]:
    group = typer.main.get_command(app)
    return group.commands[command]  # type: ignore[attr-defined]


def _parse(argv: list[str]) -> None:
    """Parse `argv` with the real CLI's options without running it; raises on unknown flags."""
    command = _cli_params(argv[0])
    context = command.make_context(argv[0], list(argv[1:]))
    formats = context.params["format"].split(",")
    assert set(formats) <= set(FORMATS) | {"text"}, formats


def _script_argv(script: str, values: dict[str, str]) -> list[str]:
    """The `exec hipaacheck ...` command of a shell script, with its variables filled in."""
    joined = script.replace("\\\n", " ")
    (line,) = [ln for ln in joined.splitlines() if ln.strip().startswith("exec hipaacheck")]
    for name, value in values.items():
        line = line.replace("${" + name + "}", value)
    return shlex.split(line)[2:]


def test_jobs_call_the_cli_with_options_it_has(built, merge_job):
    cron = _find(built["nightly"], "CronJob")
    _parse(cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"])
    shards = _find(built["sharded"], "Job", "hipaacheck-shards")
    script = shards["spec"]["template"]["spec"]["containers"][0]["args"][0]
    _parse(_script_argv(script, {"shard": "1", "SHARDS": "4"}))
    script = merge_job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    _parse(_script_argv(script, {"results": "/shards/shard-1/report.json"}))


def test_cron_job_reads_the_config_map_and_writes_to_the_volume(built):
    pod = _find(built["nightly"], "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config = Path(args[args.index("--config") + 1])
    out = Path(args[args.index("--out") + 1])
    (config_volume,) = [n for n, p in mounts.items() if config.parent == Path(p)]
    assert volumes[config_volume]["configMap"]["name"] == "hipaacheck-inventory"
    (out_volume,) = [n for n, p in mounts.items() if Path(p) in out.parents]
    assert volumes[out_volume]["persistentVolumeClaim"]["claimName"] == "hipaacheck-reports"
