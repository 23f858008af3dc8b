"""Sets of record numbers kept as ranges: "1-50,52-90" instead of 89 integers.

A batch holds the records of a run of its file, so the record numbers an import has
handled are nearly always a few long ranges: 210,000 of them fit in a few bytes.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator


class RecordRanges:
    """An immutable set of positive integers, stored as sorted, disjoint, inclusive ranges."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        merged: list[tuple[int, int]] = []
        for start, end in sorted(ranges):
            if end < start:
                continue
            if merged and start <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        self._starts = [s for s, _ in merged]
        self._ends = [e for _, e in merged]

    @classmethod
    def of(cls, numbers: Iterable[int]) -> RecordRanges:
        """The ranges covering exactly `numbers`."""
        unique = sorted(set(numbers))
        if unique and unique[-1] - unique[0] + 1 == len(unique):
            return cls([(unique[0], unique[-1])])  # a batch's usual numbers: one run
        ranges: list[tuple[int, int]] = []
        for number in unique:
            if ranges and number == ranges[-1][1] + 1:
                ranges[-1] = (ranges[-1][0], number)
            else:
                ranges.append((number, number))
        return cls(ranges)

    @classmethod
    def parse(cls, text: str) -> RecordRanges:
        """From the text form `to_text` writes ("1-50,52")."""
        ranges = []
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            first, _, last = part.partition("-")
            ranges.append((int(first), int(last or first)))
        return cls(ranges)

    def to_text(self) -> str:
        return ",".join(str(s) if s == e else f"{s}-{e}" for s, e in self.ranges())

    def ranges(self) -> Iterator[tuple[int, int]]:
        return zip(self._starts, self._ends, strict=True)

    def __contains__(self, number: object) -> bool:
        if not isinstance(number, int):
            return False
        i = bisect.bisect_right(self._starts, number) - 1
        return i >= 0 and number <= self._ends[i]

    def __len__(self) -> int:
        return sum(e - s + 1 for s, e in self.ranges())

    def __bool__(self) -> bool:
        return bool(self._starts)

    def __iter__(self) -> Iterator[int]:
        for start, end in self.ranges():
            yield from range(start, end + 1)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RecordRanges) and (
            self._starts, self._ends) == (other._starts, other._ends)

    def __hash__(self) -> int:
        return hash((tuple(self._starts), tuple(self._ends)))

    def __or__(self, other: RecordRanges) -> RecordRanges:
        return RecordRanges([*self.ranges(), *other.ranges()])

    def __sub__(self, other: RecordRanges) -> RecordRanges:
        result: list[tuple[int, int]] = []
        cuts = list(other.ranges())
        j = 0
        for start, end in self.ranges():
            while j < len(cuts) and cuts[j][1] < start:
                j += 1
            k = j
            current = start
            while k < len(cuts) and cuts[k][0] <= end:
                cut_start, cut_end = cuts[k]
                if cut_start > current:
                    result.append((current, cut_start - 1))
                current = max(current, cut_end + 1)
                k += 1
            if current <= end:
                result.append((current, end))
        return RecordRanges(result)

    def __repr__(self) -> str:
        return f"RecordRanges({self.to_text()!r})"
