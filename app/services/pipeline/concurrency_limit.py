"""How many requests an import keeps in flight: adapted to what the service can take.

The user's concurrency is a ceiling, never exceeded. Below it the limit follows the
service's answers, in the manner of TCP's congestion control:

- slow start: from 2 requests, each good answer adds one, so the limit doubles with each
  round of answers until the first sign of overload (or the ceiling);
- multiplicative decrease: a 429, a 503 or a timeout cuts the limit by a quarter, once per
  round (answers to requests sent before the cut say nothing new);
- additive increase: afterwards each good answer adds 1/limit, about one request per round,
  and only while the limit is what holds requests back;
- patience near the cap: the level at which the service last said "too many" is tried
  again only after a pause, which doubles each time the service says no again (2 s up to
  a minute): a service with a hard cap sees a refused request now and then, not a stream;
- rising latency: when answers take longer than they did at their best, the service is
  queueing what it cannot take yet; from the ratio follows how many requests wait there
  (as in TCP Vegas). More than two waiting: the limit moves towards what the service works
  on plus two; one or two: it holds. Judging by the number waiting rather than by the
  ratio alone keeps jitter (a busy laptop, a noisy network) from dragging a limit of 2 or
  3 down to 1, where every pause between request and answer is lost time.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

INITIAL_LIMIT = 2
DECREASE_FACTOR = 0.75
FIRST_PROBE_PAUSE_S = 2.0
LONGEST_PROBE_PAUSE_S = 60.0
LATENCY_SMOOTHING = 0.2  # weight of the newest answer in the smoothed latency
QUEUE_ALLOWANCE = 2.0  # requests the service may hold waiting before the limit comes down
STEP_TOWARDS_TARGET = 0.2  # how far one answer moves the limit towards the latency target
BASELINE_DRIFT = 0.0005  # how fast the best latency may rise again, per answer
MIN_LATENCY_SAMPLES = 20


@dataclass(slots=True)
class Slot:
    """One request in flight: when, in which order and at which limit it was sent."""

    sent_at: float
    sequence: int
    limit_when_sent: int


class AdaptiveLimit:
    """Gates requests: `async with limit.slot() as slot:` send, then `await observe(...)`.

    `current` is the number of requests allowed in flight now (shown to the user);
    `ceiling` the user's setting.
    """

    def __init__(self, ceiling: int, *, initial: int = INITIAL_LIMIT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = max(1, ceiling)
        self._limit = float(min(self.ceiling, max(1, initial)))
        self._clock = clock
        self._in_flight = 0
        self._waiting = 0
        self._sequence = 0
        self._cut_at_sequence = 0
        self._slow_start = True
        self._refused_level: int | None = None
        self._probe_pause = FIRST_PROBE_PAUSE_S
        self._probe_after = 0.0
        self._smoothed: float | None = None
        self._best: float | None = None
        self._samples = 0
        self._changed = asyncio.Condition()
        self.cuts = 0

    @property
    def current(self) -> int:
        return max(1, min(self.ceiling, math.floor(self._limit)))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        """Wait until one more request may go out; hold the place while it is under way."""
        async with self._changed:
            self._waiting += 1
            try:
                await self._changed.wait_for(lambda: self._in_flight < self.current)
            finally:
                self._waiting -= 1
            self._in_flight += 1
            self._sequence += 1
            taken = Slot(self._clock(), self._sequence, self.current)
        try:
            yield taken
        finally:
            async with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    async def observe(self, slot: Slot, *, overloaded: bool, answered: bool = True) -> None:
        """What the answer to `slot`'s request said (call it while holding the slot).

        overloaded: 429, 503 or no answer in time. answered False: no real answer (a
        connection error), whose latency means nothing.
        """
        async with self._changed:
            now = self._clock()
            if overloaded:
                self._on_overload(slot, now)
            elif answered:
                self._on_good_answer(slot, now)
            self._changed.notify_all()

    def _on_overload(self, slot: Slot, now: float) -> None:
        if slot.sequence <= self._cut_at_sequence:
            return  # sent before the last cut: that cut has answered it already
        level = slot.limit_when_sent
        if not self._slow_start and self._refused_level is not None \
                and level >= self._refused_level:
            # refused again where it was refused before: wait longer before the next try
            self._probe_pause = min(LONGEST_PROBE_PAUSE_S, self._probe_pause * 2)
        self._refused_level = level
        self._probe_after = now + self._probe_pause
        self._slow_start = False
        self._cut(min(self._limit, float(level)) * DECREASE_FACTOR)

    def _cut(self, new_limit: float) -> None:
        self._limit = max(1.0, new_limit)
        self._cut_at_sequence = self._sequence
        self.cuts += 1

    def _on_good_answer(self, slot: Slot, now: float) -> None:
        ratio = self._latency_ratio(now - slot.sent_at)
        # Answers `ratio` times slower than at their best: of `limit` requests, the service
        # works on limit / ratio and the rest wait (TCP Vegas' estimate). A few waiting keep
        # it busy between answers; more only add latency.
        waiting = self._limit * (1 - 1 / ratio)
        if waiting > QUEUE_ALLOWANCE:
            target = max(1.0, self._limit / ratio + QUEUE_ALLOWANCE)
            if target < self._limit:
                self._slow_start = False
                self._limit += STEP_TOWARDS_TARGET * (target - self._limit)
            return
        if waiting > QUEUE_ALLOWANCE / 2:
            return  # enough waiting already: no reason to grow
        if self._in_flight + self._waiting < self.current:
            return  # the limit is not what holds requests back: no reason to grow
        grown = self._limit + (1.0 if self._slow_start else 1.0 / self._limit)
        refused = self._refused_level
        if refused is not None and math.floor(grown) >= refused:
            if now < self._probe_after:
                grown = min(grown, refused - 0.001)  # patience just below the cap
            elif slot.limit_when_sent >= refused:
                # the level the service refused holds now: that was a passing moment
                self._refused_level = None
                self._probe_pause = FIRST_PROBE_PAUSE_S
        self._limit = min(float(self.ceiling), grown)

    def _latency_ratio(self, latency: float) -> float:
        """Smoothed latency over its best (1.0 until there are enough answers to judge)."""
        self._samples += 1
        smoothed = latency if self._smoothed is None else (
            LATENCY_SMOOTHING * latency + (1 - LATENCY_SMOOTHING) * self._smoothed)
        self._smoothed = smoothed
        self._best = smoothed if self._best is None else min(
            smoothed, self._best * (1 + BASELINE_DRIFT))
        if self._samples < MIN_LATENCY_SAMPLES or self._best <= 0:
            return 1.0
        return smoothed / self._best
