"""
Accuracy, throughput and memory of the PHI detector on a seeded, labelled synthetic corpus,
beside Microsoft Presidio's pattern recognizers and scrubadub where they are installed.

The corpus mixes eleven log formats (nginx access, application JSON, PostgreSQL, syslog,
Kubernetes, HL7, FHIR and X12 traffic, Java stack traces with SQL, AWS ALB access logs, and a
format made of hard negatives: Luhn-valid order ids, nine-digit ids that pass the SSN rules,
ten-digit counters that pass the NANP rules, service mailboxes, dates under other keys, AWS
account ids, block ids, UUIDs, versions), with synthetic patients' identifiers on about 1% of
lines; each leaking line is labelled with the kinds it holds.

It is written to a temporary directory (plain files and a gzip rotation) and scanned end to
end, as the `logs.files.phi` check does: read, decompress, detect, validate, aggregate, and
write the redacted evidence. Printed per engine (Hyperscan, RE2, Python's `re`, whichever are
installed): precision and recall per kind and overall at (line, kind) granularity, clean
lines flagged per 2,000, MB/s of CPU time on one core; then the peak memory of scans of a file
and of a file eight times larger, each in a fresh process (flat means streaming).

    .venv/bin/python benchmarks/phi_detector.py [--lines 300000] [--seed 1] [--phi-rate 0.01]
        [--compare-lines 2000] [--memory-mb 16]

Presidio runs its pattern recognizers alone (its analyzer engine needs a spaCy model, which
cannot be downloaded offline); scrubadub runs its default detectors and the date-of-birth one.
Both are pure Python and far slower, so they get a sample of `--compare-lines` lines.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from hipaacheck.detectors.files import LogFileReader, discover
from hipaacheck.detectors.phi import Kind, PhiDetector, PhiSummary, available_engines
from hipaacheck.lab.logs import SyntheticLogs

Labels = dict[tuple[str, int], frozenset[Kind]]
Predicted = dict[tuple[str, int], set[Kind]]
Timing = tuple[float, float]
"""CPU seconds of this process, and wall-clock seconds."""


def build_corpus(root: Path, lines: int, seed: int, phi_rate: float) -> tuple[Labels, int]:
    """Write the corpus under `root`; return the labels of leaking lines and the clean count."""
    logs, rnd = SyntheticLogs(seed=seed, patients=500), random.Random(seed)
    labels: Labels = {}
    per_format = lines // len(SyntheticLogs.FORMATS)
    clean = 0
    for fmt in SyntheticLogs.FORMATS:
        out: list[bytes] = []
        name = f"{fmt}.log" if fmt != "nginx" else "nginx.log.1.gz"
        for n in range(1, per_format + 1):
            if rnd.random() < phi_rate:
                line, kinds = logs.leaking(fmt)
                labels[(name, n)] = kinds
            else:
                line, clean = logs.clean(fmt), clean + 1
            out.append(line)
        data = b"\n".join(out) + b"\n"
        path = root / name
        path.write_bytes(gzip.compress(data, compresslevel=1) if name.endswith(".gz") else data)
    return labels, clean


def scan(root: Path, engine: str, evidence: Path) -> tuple[Predicted, int, Timing]:
    """Scan every file end to end; return predictions, bytes read and the time taken."""
    detector = PhiDetector(engine=engine)  # type: ignore[arg-type]
    predicted: Predicted = {}
    total, cpu, wall = 0, time.process_time(), time.perf_counter()
    report = []
    for path in discover([str(root)]).files:
        reader = LogFileReader(path, max_bytes=1 << 40)
        summary = PhiSummary()
        name = Path(path).name
        for hits in detector.scan_blocks(reader.blocks(), previews=1):
            summary.add(hits)
            predicted[(name, hits.line_no)] = {m.kind for m in hits.matches}
        total += reader.outcome.bytes_read
        report.append({"file": name, "preview": summary.first_preview,
                       "kinds": [(k.kind.value, k.count, k.distinct) for k in summary.kinds()]})
    evidence.write_text(json.dumps(report))
    return predicted, total, (time.process_time() - cpu, time.perf_counter() - wall)


def accuracy(labels: Labels, predicted: Predicted, kinds: frozenset[Kind] | None = None
             ) -> dict[Kind | None, tuple[int, int, int]]:
    """True positives, false positives and false negatives per kind (None: all kinds)."""
    tp, fp, fn = Counter[Kind | None](), Counter[Kind | None](), Counter[Kind | None]()
    for key in set(labels) | set(predicted):
        truth, guess = labels.get(key, frozenset()), predicted.get(key, set())
        if kinds is not None:
            truth, guess = truth & kinds, guess & kinds
        for kind in truth | guess:
            counter = tp if kind in truth and kind in guess else fp if kind in guess else fn
            counter[kind] += 1
            counter[None] += 1
    return {k: (tp[k], fp[k], fn[k]) for k in set(tp) | set(fp) | set(fn)}


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.3f}" if b else "  n/a"


def print_accuracy(title: str, labels: Labels, clean: int, predicted: Predicted,
                   kinds: frozenset[Kind] | None = None) -> None:
    """Precision and recall per kind and overall, and clean lines flagged."""
    print(f"\n== {title} ==")
    print(f"{'kind':<24} {'TP':>6} {'FP':>5} {'FN':>5} {'precision':>9} {'recall':>7}")
    rows = accuracy(labels, predicted, kinds)
    for kind in sorted((k for k in rows if k is not None), key=lambda k: k.value):
        tp, fp, fn = rows[kind]
        print(f"{kind.value:<24} {tp:>6} {fp:>5} {fn:>5} {_ratio(tp, tp + fp):>9} "
              f"{_ratio(tp, tp + fn):>7}")
    tp, fp, fn = rows.get(None, (0, 0, 0))
    print(f"{'OVERALL':<24} {tp:>6} {fp:>5} {fn:>5} {_ratio(tp, tp + fp):>9} "
          f"{_ratio(tp, tp + fn):>7}")
    flagged = sum(1 for key, found in predicted.items()
                  if key not in labels and (kinds is None or found & kinds))
    print(f"clean lines flagged: {flagged} of {clean} "
          f"({flagged * 2000 / max(clean, 1):.3f} per 2,000; target <= 1)")


def print_speed(total: int, timing: Timing, what: str) -> None:
    """Throughput in MB/s of CPU time and of wall-clock time."""
    cpu, wall = timing
    print(f"throughput: {total / 1e6:.2f} MB, {total / 1e6 / max(cpu, 1e-9):.3f} MB/s of CPU "
          f"time on one core ({cpu:.2f} s; wall clock {wall:.2f} s = "
          f"{total / 1e6 / max(wall, 1e-9):.3f} MB/s); {what}")


# --------------------------------------------------------------------------------------------
# Presidio's pattern recognizers and scrubadub, on the same lines.

PRESIDIO_KINDS = {"US_SSN": Kind.SSN, "EMAIL_ADDRESS": Kind.EMAIL, "PHONE_NUMBER": Kind.PHONE,
                  "CREDIT_CARD": Kind.PAYMENT_CARD, "DATE_TIME": Kind.DATE_OF_BIRTH,
                  "MEDICAL_LICENSE": Kind.DEA_NUMBER}
SCRUBADUB_KINDS = {"social_security_number": Kind.SSN, "email": Kind.EMAIL, "phone": Kind.PHONE,
                   "credit_card": Kind.PAYMENT_CARD, "date_of_birth": Kind.DATE_OF_BIRTH}


def _presidio(min_score: float = 0.0) -> Callable[[str], set[Kind]] | str:
    try:
        import tldextract
        from presidio_analyzer import predefined_recognizers as pr
    except ImportError:
        return "presidio-analyzer is not installed"
    # Offline: the e-mail recognizer's domain check uses the suffix list tldextract ships.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())
    recognizers = [pr.UsSsnRecognizer(), pr.EmailRecognizer(), pr.PhoneRecognizer(),
                   pr.CreditCardRecognizer(), pr.DateRecognizer(),
                   pr.MedicalLicenseRecognizer()]
    entities = list(PRESIDIO_KINDS)

    def find(text: str) -> set[Kind]:
        found = set()
        for recognizer in recognizers:
            for result in recognizer.analyze(text, entities, None):  # type: ignore[arg-type]
                if result.score >= min_score:
                    found.add(PRESIDIO_KINDS[result.entity_type])
        return found
    return find


def _scrubadub() -> Callable[[str], set[Kind]] | str:
    try:
        import scrubadub
    except ImportError:
        return "scrubadub is not installed"
    scrubber = scrubadub.Scrubber()
    try:
        scrubber.add_detector(scrubadub.detectors.DateOfBirthDetector)
    except (AttributeError, ImportError, ValueError):
        pass

    def find(text: str) -> set[Kind]:
        return {SCRUBADUB_KINDS[f.type] for f in scrubber.iter_filth(text)
                if f.type in SCRUBADUB_KINDS}
    return find


def _sample(root: Path, labels: Labels, count: int) -> tuple[list[tuple[str, int, str]], Labels]:
    """The first `count` lines across the corpus files, and their labels."""
    per_file = max(1, count // len(SyntheticLogs.FORMATS))
    lines, kept = [], {}
    for path in sorted(root.iterdir()):
        raw = path.read_bytes()
        text = gzip.decompress(raw) if path.name.endswith(".gz") else raw
        for n, line in enumerate(text.decode("utf-8", errors="replace").splitlines()[:per_file],
                                 1):
            lines.append((path.name, n, line))
            if (path.name, n) in labels:
                kept[(path.name, n)] = labels[(path.name, n)]
    return lines, kept


def compare_others(root: Path, labels: Labels, count: int) -> None:
    """The same accuracy figures for Presidio's pattern recognizers and scrubadub."""
    lines, sample = _sample(root, labels, count)
    clean = len(lines) - len(sample)
    size = sum(len(line) + 1 for _, _, line in lines)
    tools: Iterable[tuple[str, Callable[[str], set[Kind]] | str, dict[str, Kind]]] = (
        ("Presidio pattern recognizers (every result)", _presidio(), PRESIDIO_KINDS),
        ("Presidio pattern recognizers (score >= 0.5)", _presidio(0.5), PRESIDIO_KINDS),
        ("scrubadub", _scrubadub(), SCRUBADUB_KINDS))
    ours = PhiDetector()
    for name, find, mapping in tools:
        if isinstance(find, str):
            print(f"\n{name}: {find}; no comparison figures")
            continue
        predicted: Predicted = {}
        cpu, wall = time.process_time(), time.perf_counter()
        for file, n, line in lines:
            found = find(line)
            if found:
                predicted[(file, n)] = found
        timing = (time.process_time() - cpu, time.perf_counter() - wall)
        kinds = frozenset(mapping.values())
        print_accuracy(f"{name}, {len(lines)} lines, on the kinds it knows", sample, clean,
                       predicted, kinds)
        print_speed(size, timing, "per line, in memory")
        mine = {(f, n): {m.kind for m in ours.scan_line(line.encode())}
                for f, n, line in lines}
        mine = {k: v for k, v in mine.items() if v}
        print_accuracy(f"hipaacheck ({ours.engine}) on the same lines and kinds", sample, clean,
                       mine, kinds)


# --------------------------------------------------------------------------------------------
# Memory as the file grows.

def memory_probe(path: str) -> None:
    """Scan one file with the default engine and print the peak resident set in MB."""
    detector = PhiDetector()
    reader = LogFileReader(path, max_bytes=1 << 40)
    summary = PhiSummary()
    for hits in detector.scan_blocks(reader.blocks(), previews=1):
        summary.add(hits)
    print(json.dumps({"bytes": reader.outcome.bytes_read, "peak_mb": _peak_mb()}))


def _peak_mb() -> float:
    """This process's peak resident set: VmHWM, which (unlike ru_maxrss) exec resets."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_memory(root: Path, megabytes: int) -> None:
    """Peak memory of scanning a file, and one eight times larger, in fresh processes."""
    source = b"".join(p.read_bytes() for p in sorted(root.glob("*.log")))
    results = []
    for factor in (1, 8):
        path = root.parent / f"memory-{factor}.log"
        with path.open("wb") as out:
            left = megabytes * factor * 1_000_000
            while left > 0:
                out.write(source[:left])
                left -= min(left, len(source))
        probe = subprocess.run([sys.executable, __file__, "--memory-probe", str(path)],
                               capture_output=True, text=True, check=True, timeout=600)
        results.append(json.loads(probe.stdout))
        path.unlink()
    print("\n== memory as the file grows (fresh process each, default engine) ==")
    for row in results:
        print(f"{row['bytes'] / 1e6:8.1f} MB file: peak resident {row['peak_mb']:.0f} MB")
    growth = results[1]["peak_mb"] - results[0]["peak_mb"]
    print(f"growth for {results[1]['bytes'] / results[0]['bytes']:.0f}x the input: "
          f"{growth:+.0f} MB (flat: the file is streamed in blocks, never loaded whole)")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--phi-rate", type=float, default=0.01)
    parser.add_argument("--compare-lines", type=int, default=2_000)
    parser.add_argument("--memory-mb", type=int, default=16)
    parser.add_argument("--memory-probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe:
        memory_probe(args.memory_probe)
        return 0
    with tempfile.TemporaryDirectory(prefix="phi-bench-") as tmp:
        root = Path(tmp) / "logs"
        root.mkdir()
        labels, clean = build_corpus(root, args.lines, args.seed, args.phi_rate)
        size = sum(p.stat().st_size for p in root.iterdir())
        print(f"corpus: {args.lines} lines in {len(SyntheticLogs.FORMATS)} formats, "
              f"{len(labels)} leaking lines ({len(labels) / args.lines:.2%}), "
              f"{size / 1e6:.1f} MB on disk, seed {args.seed}")
        for engine in available_engines():
            predicted, total, timing = scan(root, engine, Path(tmp) / f"evidence-{engine}.json")
            print_accuracy(f"engine: {engine}", labels, clean, predicted)
            print_speed(total, timing, "end to end: read, gunzip, detect, validate, "
                                       "aggregate, write evidence")
        if args.compare_lines:
            compare_others(root, labels, args.compare_lines)
        if args.memory_mb:
            measure_memory(root, args.memory_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
