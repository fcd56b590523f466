"""
Detectors that look at content: the PHI detector and the streaming log reader.

Both are plain libraries, usable without a scan: `PhiDetector` finds identifiers in raw bytes
(on Hyperscan, RE2 or Python's `re`, with the same results), `discover` and `LogFileReader`
expand a sink's paths and stream each file (plain or compressed, sampled when larger than its
budget) in bounded memory, and `stream_blocks` cuts any other byte stream (an S3 object, a
pod log) into the same blocks of lines.
"""

from hipaacheck.detectors.files import (
    Discovery,
    LogFileReader,
    ReadOutcome,
    discover,
    plan_windows,
    stream_blocks,
)
from hipaacheck.detectors.phi import (
    SPECS,
    Block,
    Kind,
    KindSummary,
    LineHits,
    Match,
    PhiDetector,
    PhiSummary,
    Spec,
    available_engines,
    hyperscan_available,
    preview,
    re2_available,
)

__all__ = [
    "SPECS", "Block", "Discovery", "Kind", "KindSummary", "LineHits", "LogFileReader", "Match",
    "PhiDetector", "PhiSummary", "ReadOutcome", "Spec", "available_engines", "discover",
    "hyperscan_available", "plan_windows", "preview", "re2_available", "stream_blocks",
]
