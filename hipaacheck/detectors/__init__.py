"""
Detectors that look at content: the PHI detector and the streaming log-file reader.

Both are plain libraries, usable without a scan: `PhiDetector` finds identifiers in raw bytes,
`discover` and `LogFileReader` expand a sink's paths and stream each file (plain or compressed)
in bounded memory.
"""

from hipaacheck.detectors.files import Discovery, LogFileReader, ReadOutcome, discover
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
    preview,
    re2_available,
)

__all__ = [
    "SPECS", "Block", "Discovery", "Kind", "KindSummary", "LineHits", "LogFileReader", "Match",
    "PhiDetector", "PhiSummary", "ReadOutcome", "Spec", "discover", "preview", "re2_available",
]
