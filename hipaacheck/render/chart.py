"""
Geometry of the executive summary's chart: one stacked bar per HIPAA standard, split by status.

This module computes positions and sizes only; the templates draw them as inline SVG, so the
chart needs no JavaScript and prints like the rest of the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

WIDTH = 760
LABEL_WIDTH = 300
BAR_WIDTH = 360
ROW_HEIGHT = 28
BAR_HEIGHT = 18
TOP = 34
MIN_SEGMENT = 3
"""Pixels: a status with any findings stays visible however small its share."""
LEGEND_CHAR = 7.5
"""Pixels: the width allowed per character of a legend entry at 12 px."""
LABEL_SEGMENT = 28
"""Pixels: a segment at least this wide carries its count as text."""

COLORS = {"FAIL": "#b3261e", "ERROR": "#7a1fa2", "UNVERIFIED": "#a15c00", "WARN": "#8a6d00",
          "PASS": "#1b6e3a"}
"""Fill colour per status, given as SVG attributes so every renderer draws the same chart."""


@dataclass(frozen=True)
class Segment:
    """The part of one bar that holds one status."""

    status: str
    x: float
    width: float
    count: int

    @property
    def fill(self) -> str:
        """The segment's colour."""
        return COLORS.get(self.status, "#555555")

    @property
    def labelled(self) -> bool:
        """Whether the segment is wide enough to print its count inside."""
        return self.width >= LABEL_SEGMENT

    @property
    def middle(self) -> float:
        """The x coordinate of the segment's centre."""
        return self.x + self.width / 2


@dataclass(frozen=True)
class ChartRow:
    """One standard's bar."""

    y: float
    code: str
    title: str
    total: int
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class LegendItem:
    """One status in the legend above the bars."""

    status: str
    x: float

    @property
    def fill(self) -> str:
        """The status's colour."""
        return COLORS.get(self.status, "#555555")


@dataclass(frozen=True)
class Chart:
    """A whole chart: its size, rows and legend."""

    width: int
    height: int
    label_width: int
    bar_width: int
    bar_height: int
    rows: tuple[ChartRow, ...]
    legend: tuple[LegendItem, ...]


def _widths(counts: Sequence[int], span: float) -> list[float]:
    """Shares of `span` proportional to `counts`, none that is non-zero below `MIN_SEGMENT`."""
    total = sum(counts)
    if total == 0:
        return [0.0 for _ in counts]
    widths = [max(MIN_SEGMENT, span * n / total) if n else 0.0 for n in counts]
    overflow = sum(widths) - span
    if overflow > 0:
        widest = max(range(len(widths)), key=lambda i: widths[i])
        widths[widest] -= overflow
    return widths


def _row(index: int, code: str, title: str, counts: Mapping[str, int],
         statuses: Sequence[str]) -> ChartRow:
    values = [counts.get(s, 0) for s in statuses]
    x = float(LABEL_WIDTH)
    segments = []
    for status, count, width in zip(statuses, values, _widths(values, BAR_WIDTH)):
        if count:
            segments.append(Segment(status, round(x, 2), round(width, 2), count))
            x += width
    return ChartRow(TOP + index * ROW_HEIGHT, code, title, sum(values), tuple(segments))


def status_chart(rows: Sequence[tuple[str, str, Mapping[str, int]]],
                 statuses: Sequence[str]) -> Chart:
    """A 100 % stacked bar per `(code, title, counts)` row, segments in `statuses` order."""
    legend, x = [], float(LABEL_WIDTH)
    for status in statuses:
        legend.append(LegendItem(status, x))
        x += 16 + LEGEND_CHAR * len(status) + 14
    chart_rows = tuple(_row(i, code, title, counts, statuses)
                       for i, (code, title, counts) in enumerate(rows))
    return Chart(WIDTH, TOP + len(chart_rows) * ROW_HEIGHT + 8, LABEL_WIDTH, BAR_WIDTH,
                 BAR_HEIGHT, chart_rows, tuple(legend))
