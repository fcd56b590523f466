"""
Scale-out: a deterministic share of the targets per shard, and the merge of shard results.

`--shard K/N` (K from 1 to N) scans the targets that `assign` gives to shard K. The assignment
depends only on the target ids and N, never on the order of the inventory, the host or the time:
each target ranks the shards by a keyed hash of its id (rendezvous hashing) and takes the best
ranked one that still has room under a quota that keeps every shard within one target of the
others, for each kind of target and in total. A shard's history therefore stays comparable from
night to night, and adding one target moves few others.

Every shard result records the shard and the whole inventory's target list. `merge` uses that to
rebuild one result equal to a single-process scan; a target no shard reported on gets an
UNVERIFIED finding for every check that applies to it, never silence and never a pass.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from hipaacheck.errors import UsageError
from hipaacheck.model import (
    CheckMeta,
    EndpointRecord,
    Finding,
    FindingBuilder,
    Target,
    TargetKind,
    Unknown,
    UnknownReason,
)
from hipaacheck.result import ScanResult, Shard, TargetSummary, WaiverState, WaiverUse
from hipaacheck.waivers import waiver_notes

logger = logging.getLogger(__name__)

_SHARD = re.compile(r"^\s*(\d+|job)\s*/\s*(\d+)\s*$")
_MAX_SHARDS = 1000


class _HasIdAndKind(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> TargetKind: ...


TargetT = TypeVar("TargetT", bound=_HasIdAndKind)


def parse_shard(text: str, env: Mapping[str, str] | None = None) -> Shard:
    """
    Parse `K/N` (1 <= K <= N). `job/N` takes K from a Kubernetes Indexed Job's 0-based
    `JOB_COMPLETION_INDEX` (plus one), so every pod of the Job can run the same command.
    """
    match = _SHARD.match(text)
    if not match:
        raise UsageError("--shard: expected K/N, e.g. 2/8 (shard 2 of 8), or job/N")
    count = int(match.group(2))
    if match.group(1) == "job":
        completion = (os.environ if env is None else env).get("JOB_COMPLETION_INDEX", "")
        if not completion.isdigit():
            raise UsageError("--shard job/N: JOB_COMPLETION_INDEX is not set to an index")
        index = int(completion) + 1
    else:
        index = int(match.group(1))
    if not 1 <= count <= _MAX_SHARDS or not 1 <= index <= count:
        raise UsageError(f"--shard: K must be between 1 and N, and N at most {_MAX_SHARDS}")
    return Shard(index, count)


def scope_id(organization: str, source: str = "", only: Iterable[str] = ()) -> str:
    """
    The scope of a scan: which scheduled job it is, so tonight's scan finds last night's.

    It is made of the organization, where the inventory came from (`source`, e.g. the config
    file's absolute path) and the command line's check selection, and deliberately not of the
    inventory's content or the shard: an added endpoint shows up in a diff as a target that
    appeared instead of starting a new history, and every shard of a scan, their merge and an
    unsharded scan of the same inventory share one scope. `--scope NAME` replaces it.
    """
    selection = ",".join(sorted(set(only)))
    blob = f"hipaacheck.scope/1\0{organization}\0{source}\0{selection}".encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def empty_shard_note(shard: Shard) -> str:
    """The note a shard result carries when the assignment left it no target."""
    return (f"Shard {shard} has no targets: the inventory has fewer targets than shards. "
            "The other shards cover them all.")


def _rank(target_id: str, shard: int) -> bytes:
    return hashlib.sha256(f"{target_id}\0{shard}".encode()).digest()


def assign(targets: Sequence[_HasIdAndKind], count: int) -> dict[str, int]:
    """
    The shard (1-based) of every target id: balanced per kind and in total, deterministic.
    """
    by_kind: dict[TargetKind, list[str]] = defaultdict(list)
    for target in targets:
        by_kind[target.kind].append(target.id)
    shards: dict[str, int] = {}
    offset = 0
    for kind in sorted(by_kind, key=lambda k: k.value):
        ids = sorted(set(by_kind[kind]), key=lambda i: (hashlib.sha256(i.encode()).digest(), i))
        base, extra = divmod(len(ids), count)
        # The shards that take one more target rotate from kind to kind, so totals stay even.
        room = [base + (1 if (k - offset) % count < extra else 0) for k in range(count)]
        offset = (offset + extra) % count
        for target_id in ids:
            ranked = sorted(range(count), key=lambda k: _rank(target_id, k), reverse=True)
            chosen = next(k for k in ranked if room[k] > 0)
            room[chosen] -= 1
            shards[target_id] = chosen + 1
    return shards


def shard_targets(targets: Sequence[TargetT], shard: Shard) -> list[TargetT]:
    """The targets that `shard` scans, in inventory order."""
    owner = assign(targets, shard.count)
    return [t for t in targets if owner[t.id] == shard.index]


@dataclass(frozen=True)
class MergeOutcome:
    """
    One result from the shards, and what was missing from them.

    `missing_targets` are the ids no shard reported on; their findings in `result` are UNVERIFIED.
    `incomplete_shards` wrote a result but were interrupted or never finished a task.
    """

    result: ScanResult
    shards: int
    missing_shards: tuple[int, ...]
    missing_targets: tuple[str, ...]
    incomplete_shards: tuple[int, ...]


def merge(results: Sequence[ScanResult]) -> MergeOutcome:
    """
    Merge the results of the shards of one scan into the result a single process would give.

    Refuses (UsageError) results that are not shards, come from different scopes or shard
    counts, disagree on the inventory, or repeat a shard.
    """
    count, inventory = _validate(results)
    checks = _merged_checks(results)
    present = {t.id for r in results for t in r.targets}
    missing = tuple(t for t in inventory if t.id not in present)
    indices = {r.shard.index for r in results if r.shard}
    missing_shards = tuple(k for k in range(1, count + 1) if k not in indices)
    synthetic = _missing_findings(missing, checks, assign(inventory, count))
    known = {t.id for t in inventory}
    endpoints, doubles = _merged_endpoints(results, known)
    discovered = tuple({t.id: t for r in results for t in r.targets
                        if t.id not in known and t.id not in doubles}.values())
    kept = [f for f in _shard_findings(results) if f.target not in doubles]
    repeated = len({(f.check_id, f.target) for r in results for f in r.findings
                    if f.target in doubles})
    findings = _ordered(kept + synthetic, checks, (*inventory, *discovered))
    incomplete = tuple(sorted(r.shard.index for r in results if r.shard and not r.complete))
    waivers = _merged_waivers(results)
    notes = _merged_notes(results, waivers, count, missing_shards, missing, incomplete)
    first = results[0]
    merged = ScanResult(
        tool_version=first.tool_version, organization=first.organization,
        started=min(r.started for r in results), finished=max(r.finished for r in results),
        config_fingerprint=first.config_fingerprint, targets=(*inventory, *discovered),
        checks=checks,
        findings=tuple(findings), complete=not missing and not incomplete,
        interrupted=any(r.interrupted for r in results),
        tasks=sum(r.tasks for r in results) + len(synthetic) - repeated, notes=notes,
        scope=first.scope, waivers=waivers, endpoints=endpoints)
    return MergeOutcome(merged, count, missing_shards, tuple(t.id for t in missing), incomplete)


def read_s3_documents(url: str, *, timeout: float = 10.0) -> list[tuple[str, dict[str, Any]]]:
    """
    Every `*.json` object under an `s3://bucket/prefix`, parsed, with its `s3://` name.

    Reads through the same read-only guarded session as the checks (ListObjectsV2, GetObject);
    credentials, region and endpoint come from the AWS chain (`AWS_PROFILE`, `AWS_REGION`,
    `AWS_ENDPOINT_URL`).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from hipaacheck.clients.aws import AwsSession
    from hipaacheck.config import AwsAccountConfig

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise UsageError(f"{url}: expected s3://bucket/prefix")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    account = AwsAccountConfig(name="merge", profile=os.environ.get("AWS_PROFILE"),
                               regions=[region], endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    client = AwsSession(account, timeout=timeout).client("s3", region)
    try:
        keys = [obj["Key"] for page in client.get_paginator("list_objects_v2").paginate(
                    Bucket=bucket, Prefix=prefix) for obj in page.get("Contents", ())
                if obj["Key"].endswith(".json")]
        documents = [(f"s3://{bucket}/{key}",
                      json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read()))
                     for key in sorted(keys)]
    except (BotoCoreError, ClientError) as exc:
        raise UsageError(f"{url}: cannot read the shard results ({_aws_error(exc)})") from None
    except ValueError:
        raise UsageError(f"{url}: an object there is not JSON") from None
    if not documents:
        raise UsageError(f"{url}: no .json objects under this prefix")
    return documents


def _aws_error(exc: Exception) -> str:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(
        exc, "response") else None
    return str(code or type(exc).__name__)


def _validate(results: Sequence[ScanResult]) -> tuple[int, tuple[TargetSummary, ...]]:
    if not results:
        raise UsageError("merge: no shard results given")
    unsharded = [r for r in results if r.shard is None]
    if unsharded:
        raise UsageError("merge: a result is not a shard (it was scanned without --shard)")
    if len({r.shard.count for r in results if r.shard}) != 1:
        raise UsageError("merge: the results come from different shard counts")
    if len({(r.scope, r.config_fingerprint) for r in results}) != 1:
        raise UsageError("merge: the results come from different inventories or selections")
    if len({r.inventory_targets for r in results}) != 1:
        raise UsageError("merge: the results disagree on the inventory's targets")
    indices = [r.shard.index for r in results if r.shard]
    if len(indices) != len(set(indices)):
        raise UsageError("merge: a shard appears more than once")
    if len({r.tool_version for r in results}) != 1:
        logger.warning("merging shards written by different hipaacheck versions")
    count = results[0].shard.count if results[0].shard else 1
    return count, results[0].inventory_targets


def _merged_checks(results: Sequence[ScanResult]) -> tuple[CheckMeta, ...]:
    by_id: dict[str, CheckMeta] = {}
    for result in results:
        for meta in result.checks:
            by_id.setdefault(meta.id, meta)
    return tuple(by_id[i] for i in sorted(by_id))


def _merged_endpoints(results: Sequence[ScanResult], configured: set[str]
                      ) -> tuple[tuple[EndpointRecord, ...], set[str]]:
    """
    One record per endpoint, as a single process would plan it, and the TLS targets that
    shards probed twice (their findings go): where two shards' sources found one endpoint,
    the probe of the first source in source order stands, and the origins are joined.
    """
    groups: dict[tuple[str, int, str | None], list[EndpointRecord]] = {}
    for record in (e for r in results for e in r.endpoints):
        e = record.endpoint
        groups.setdefault((e.host.lower(), e.port, e.starttls), []).append(record)
    merged: list[tuple[tuple[str, str, int], EndpointRecord]] = []
    doubles: set[str] = set()
    for group in groups.values():
        ranked = sorted(group, key=lambda r: (not r.probed, r.endpoint.source))
        chosen = ranked[0]
        doubles |= {r.target for r in ranked[1:] if r.probed and r.target and
                    r.target != chosen.target and r.target not in configured}
        origins = tuple(sorted({o for r in group for o in r.origins}))
        first = min((o.partition(" ")[0] for o in origins), default=chosen.endpoint.source)
        merged.append(((first, chosen.endpoint.host, chosen.endpoint.port),
                       replace(chosen, origins=origins)))
    return tuple(r for _, r in sorted(merged, key=lambda item: item[0])), doubles


def _shard_findings(results: Sequence[ScanResult]) -> Iterable[Finding]:
    """Every shard's findings; a check that failed to load is reported once, not per shard."""
    seen_load_failures: set[str] = set()
    checked = {m.id for r in results for m in r.checks}
    for result in results:
        for finding in result.findings:
            if finding.target == "-" and finding.check_id not in checked:
                if finding.check_id in seen_load_failures:
                    continue
                seen_load_failures.add(finding.check_id)
            yield finding


def _missing_findings(missing: Sequence[TargetSummary], checks: Sequence[CheckMeta],
                      owner: dict[str, int]) -> list[Finding]:
    """An UNVERIFIED finding per check that applies to each target no shard reported on."""
    count = max(owner.values(), default=1)
    out = []
    for meta in checks:
        for summary in missing:
            if meta.target_kind != summary.kind:
                continue
            target = Target(summary.kind, summary.id, summary.name)
            shard = owner.get(summary.id)
            which = f"shard {shard}/{count}" if shard else "the shard that covers it"
            unknown = Unknown(UnknownReason.INTERRUPTED,
                              f"{which} produced no result, so this target was not observed")
            out.append(FindingBuilder(meta, target).unverified(summary.name, unknown,
                                                               "the target"))
    return out


def _ordered(findings: list[Finding], checks: Sequence[CheckMeta],
             inventory: Sequence[TargetSummary]) -> list[Finding]:
    """The order of a single-process scan: by check id, then inventory order; load failures last."""
    check_rank = {m.id: i for i, m in enumerate(checks)}
    target_rank = {t.id: i for i, t in enumerate(inventory)}

    def key(f: Finding) -> tuple[int, int, int, str]:
        if f.check_id not in check_rank:
            return (1, 0, 0, f.check_id)
        return (0, check_rank[f.check_id], target_rank.get(f.target, len(target_rank)), "")

    return sorted(findings, key=key)


def _merged_waivers(results: Sequence[ScanResult]) -> tuple[WaiverUse, ...]:
    """One entry per waiver: matches add up; unmatched only when no shard matched it."""
    merged: dict[str, WaiverUse] = {}
    for result in results:
        for use in result.waivers:
            if use.id not in merged:
                merged[use.id] = use
                continue
            prior = merged[use.id]
            merged[use.id] = replace(prior, matched=prior.matched + use.matched)
    out = []
    for use in merged.values():
        if use.state is not WaiverState.EXPIRED:
            use = replace(use, state=WaiverState.ACTIVE if use.matched else WaiverState.UNMATCHED)
        out.append(use)
    return tuple(out)


def _merged_notes(results: Sequence[ScanResult], waivers: Sequence[WaiverUse], count: int,
                  missing_shards: Sequence[int], missing: Sequence[TargetSummary],
                  incomplete: Sequence[int]) -> tuple[str, ...]:
    shard_waiver_notes = {n for r in results for n in waiver_notes(r.waivers, sharded=True)}
    notes = [f"Merged from {len(results)} of {count} shards."]
    if missing_shards:
        notes.append(f"Missing shard results: {', '.join(f'{k}/{count}' for k in missing_shards)}"
                     f"; {len(missing)} targets were not observed and are UNVERIFIED: "
                     f"{', '.join(t.id for t in missing) or 'none'}.")
    if incomplete:
        notes.append("Shards that did not finish: "
                     f"{', '.join(f'{k}/{count}' for k in incomplete)}.")
    for result in results:
        for note in result.notes:
            own = {empty_shard_note(result.shard)} if result.shard else set()
            if note not in shard_waiver_notes | own and note not in notes:
                notes.append(note)
    notes.extend(waiver_notes(waivers, sharded=False))
    return tuple(notes)
