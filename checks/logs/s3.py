"""
PHI in S3 log buckets (45 CFR 164.312(b); 164.502(b) and 164.514(d), minimum necessary).

An `s3` log sink names a bucket and key prefixes. Under each prefix the check lists the
objects, keeps those modified within `max_age_days`, and reads the most recent first, at most
`max_objects` of them across the sink. Each object is read with ranged GETs within its share
of the byte budget: a gzip (or bz2, xz) object from its head, decompressed on the fly and
stopped at the budget however well it compresses; a plain object larger than its share at its
head and its tail.

One finding per prefix: FAIL when identifiers were found, UNVERIFIED when the listing or an
object could not be read or no recent object was there, PASS otherwise. Object keys can name
patients, so they never reach evidence: it gives counts, and the last-modified times of the
first objects with identifiers, by which they can be found. S3 offers no redaction in front of
a bucket; evidence says so.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.logs.cloudwatch import sink_account
from hipaacheck.checks.logs.common import NONE_OBSERVED, ContentScan, Tally, judge
from hipaacheck.clients.aws import AwsSession, classify_error, error_code
from hipaacheck.config import S3LogSinkConfig
from hipaacheck.detectors.files import ReadOutcome, stream_blocks
from hipaacheck.detectors.phi import PhiDetector
from hipaacheck.errors import ReadOnlyViolation
from hipaacheck.model import (
    CheckMeta,
    EvidenceValue,
    Fact,
    Family,
    Finding,
    Operation,
    Severity,
    Standard,
    System,
    Target,
    TargetKind,
    Unknown,
    UnknownReason,
)

logger = logging.getLogger(__name__)

FIRST_OBJECTS = 5
"""How many objects with identifiers a finding dates (by last-modified time, never by key)."""
_LIST, _GET = "s3:ListBucket", "s3:GetObject"
_COMPRESSED_SUFFIXES = (".gz", ".gzip", ".bz2", ".xz")


@dataclass(frozen=True)
class S3Object:
    """One listed object: key, size in bytes and last-modified time."""

    key: str
    size: int
    modified: dt.datetime


@dataclass(frozen=True)
class PrefixObservation:
    """
    One prefix of the bucket: how many objects it lists, how many are recent enough, how many
    of those were read, what reading them found, and the first objects with identifiers.
    """

    prefix: str
    listed: Fact[int]
    recent: int = 0
    read: int = 0
    scan: ContentScan | None = None
    objects_with_hits: tuple[str, ...] = ()
    """Last-modified times (ISO 8601) of the first objects with identifiers."""


@dataclass(frozen=True)
class S3Observation:
    """Every prefix of one S3 log sink."""

    sink: str
    bucket: str
    max_age_days: float
    prefixes: tuple[PrefixObservation, ...]


def list_objects(client: Any, bucket: str, prefix: str) -> Fact[list[S3Object]]:
    """Every object under `prefix` (ListObjectsV2, paged), or the `Unknown` of the listing."""
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [S3Object(str(o["Key"]), int(o.get("Size", 0)), o["LastModified"])
                for page in pages for o in page.get("Contents", [])]
    except ReadOnlyViolation:
        raise
    except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
        if error_code(exc) == "NoSuchBucket":
            return Unknown(UnknownReason.NOT_VISIBLE, "the bucket does not exist",
                           needs="an existing bucket name")
        return classify_error(exc, _LIST)


def read_object(client: Any, bucket: str, obj: S3Object, budget: int, tally: Tally) -> int:
    """
    Scan one object within `budget` bytes into `tally`; return the lines with hits. The
    head range is read first; a plain object larger than the budget is read at its tail too.
    """
    compressed = obj.key.lower().endswith(_COMPRESSED_SUFFIXES)
    head_budget = budget if obj.size <= budget or compressed else budget * 3 // 4
    out = ReadOutcome(size=obj.size)
    hits = _read_range(client, bucket, obj, 0, head_budget, tally, out)
    if out.problem is None and out.compression == "none" and obj.size > budget:
        tail = ReadOutcome(size=obj.size)
        start = obj.size - (budget - head_budget)
        hits += _read_range(client, bucket, obj, start, budget - head_budget, tally, tail)
        out.bytes_read, out.lines = out.bytes_read + tail.bytes_read, out.lines + tail.lines
        out.problem = tail.problem
        out.complete, out.sampled, out.sampling = False, True, "windows"
    tally.read(out)
    return hits


def _read_range(client: Any, bucket: str, obj: S3Object, start: int, length: int,
                tally: Tally, out: ReadOutcome) -> int:
    """One ranged GET, streamed through the detector; failures land on `out`."""
    ranged = start > 0 or length < obj.size
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": obj.key}
    if ranged:
        kwargs["Range"] = f"bytes={start}-{start + length - 1}"
    try:
        body = client.get_object(**kwargs)["Body"]
    except ReadOnlyViolation:
        raise
    except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
        if error_code(exc) in ("NoSuchKey", "InvalidRange"):
            out.problem = Unknown(UnknownReason.NOT_VISIBLE,
                                  "an object vanished or shrank between listing and reading")
        else:
            out.problem = classify_error(exc, _GET)
        return 0
    try:
        ends = start + length >= obj.size
        blocks = stream_blocks(body, length, out, ends_source=ends,
                               first_line_no=0 if start else 1, offset=start,
                               decompress=start == 0)
        return tally.scan(blocks)
    finally:
        body.close()


class PhiInS3Logs(Check[S3Observation]):
    """
    Fails an S3 log prefix whose recent objects hold unredacted identifiers.
    """

    meta = CheckMeta(
        id="logs.s3.phi",
        title="S3 log objects hold no unredacted patient identifiers",
        family=Family.PHI_LOGS,
        standard=Standard.AUDIT_CONTROLS,
        citations=("164.312(b)", "164.502(b)", "164.514(d)"),
        severity=Severity.HIGH,
        target_kind=TargetKind.LOG_SINK,
        description=(
            "Lists the objects under each configured prefix of a log bucket, and streams the "
            "most recent ones (plain, gzip, bz2 or xz) through the PHI detector with ranged "
            "GETs, within a per-object and per-sink byte budget that also stops compression "
            "bombs. Object keys never reach evidence unless the detector finds nothing in "
            "them."),
        remediation=(
            "Stop the identifiers at the source, or filter them out in the log pipeline before "
            "delivery to S3. Delete or re-redact the affected objects (and their noncurrent "
            "versions and replicas), and restrict who can read the bucket until it is clean."),
        operations=(
            Operation(System.AWS, "s3:ListBucket",
                      "list the objects under each configured prefix"),
            Operation(System.AWS, "s3:GetObject",
                      "read recent objects with ranged GETs within the sink's budget; values "
                      "never leave the detector"),
        ),
    )

    def applies_to(self, target: Target) -> bool:
        """S3 log sinks only."""
        return target.kind == TargetKind.LOG_SINK and isinstance(target.config, S3LogSinkConfig)

    def collect(self, ctx: CheckContext, target: Target) -> S3Observation:
        """List each prefix and read its most recent objects within the budgets."""
        sink = target.config
        if not isinstance(sink, S3LogSinkConfig):
            raise TypeError(f"target {target.id} carries no S3 log sink configuration")
        session: AwsSession = ctx.clients.aws(sink_account(sink))
        client = session.client("s3", sink.account.regions[0])
        detector = ctx.memo.get(("phi-detector",), PhiDetector)
        since = ctx.clock() - dt.timedelta(days=sink.max_age_days)
        listings = {p: list_objects(client, sink.bucket, p) for p in sink.prefixes}
        chosen = _choose(listings, since, sink.max_objects)
        bytes_left, objects_left = sink.max_bytes_per_sink, sum(len(c) for c in chosen.values())
        prefixes = []
        for prefix, listing in listings.items():
            if isinstance(listing, Unknown):
                prefixes.append(PrefixObservation(prefix, listing))
                continue
            tally, hits = Tally(detector), list[str]()
            for obj in chosen[prefix]:
                budget = max(1, min(sink.max_bytes_per_object, bytes_left // objects_left))
                before = tally.bytes_read
                if read_object(client, sink.bucket, obj, budget, tally) and \
                        len(hits) < FIRST_OBJECTS:
                    hits.append(obj.modified.astimezone(dt.UTC).isoformat(timespec="seconds"))
                bytes_left -= tally.bytes_read - before
                objects_left -= 1
            recent = sum(1 for o in listing if o.modified >= since)
            tally.complete = tally.complete and len(chosen[prefix]) == recent
            prefixes.append(PrefixObservation(prefix, len(listing), recent, len(chosen[prefix]),
                                              tally.result(), tuple(hits)))
        return S3Observation(sink.name, sink.bucket, sink.max_age_days, tuple(prefixes))

    def evaluate(self, obs: S3Observation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per prefix."""
        return [self._judge(obs, p, target) for p in obs.prefixes]

    def _judge(self, obs: S3Observation, prefix: PrefixObservation, target: Target) -> Finding:
        build = self.findings(target)
        resource = f"s3://{obs.bucket}/{prefix.prefix}"
        if isinstance(prefix.listed, Unknown):
            return build.unverified(resource, prefix.listed, "the objects under the prefix")
        if prefix.scan is None or prefix.recent == 0:
            nothing = Unknown(UnknownReason.NOT_VISIBLE,
                              f"no object under the prefix is newer than {obs.max_age_days:g} "
                              f"days ({prefix.listed} listed)",
                              needs="a prefix that receives logs, or a longer max_age_days")
            return build.unverified(resource, nothing, "recent log objects")
        extra: dict[str, EvidenceValue] = {
            "sink_kind": "s3", "objects_listed": prefix.listed, "objects_recent": prefix.recent,
            "objects_read": prefix.read, "max_age_days": obs.max_age_days}
        if prefix.objects_with_hits:
            extra["modified_times_of_objects_with_identifiers"] = prefix.objects_with_hits
        return judge(build, resource, prefix.scan, NONE_OBSERVED, "lines", extra)


def _choose(listings: dict[str, Fact[list[S3Object]]], since: dt.datetime,
            limit: int) -> dict[str, list[S3Object]]:
    """The most recent objects across prefixes, at most `limit`, each key once."""
    seen: set[str] = set()
    pool: list[tuple[dt.datetime, str, S3Object]] = []
    for prefix, listing in listings.items():
        for obj in [] if isinstance(listing, Unknown) else listing:
            if obj.modified >= since and obj.key not in seen:
                seen.add(obj.key)
                pool.append((obj.modified, prefix, obj))
    pool.sort(key=lambda row: (row[0], row[2].key), reverse=True)
    chosen: dict[str, list[S3Object]] = {p: [] for p in listings}
    for _, prefix, obj in pool[:limit]:
        chosen[prefix].append(obj)
    return chosen
