"""Backing off instead of failing: the number of requests in flight follows the service."""

from __future__ import annotations

import asyncio
import random

from app.services.pipeline.concurrency_limit import AdaptiveLimit
from app.services.pipeline.import_events import ImportState
from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from tests.conftest import RecordingListener


async def test_concurrency_8_against_a_cap_of_2_gets_every_customer_through(
        make_engine, sandbox, tmp_path):
    sandbox.config.max_concurrent = 2  # a third request in flight gets 429
    sandbox.config.retry_after_s = 0.05
    sandbox.config.latency_ms = 10
    source = tmp_path / "kunder.json"
    write_customer_file(source, generate_customers(3_000))
    listener = RecordingListener()
    engine = make_engine([source], listener=listener, batch_size=10, concurrency=8,
                         max_retries=3)
    summary = await engine.run()
    assert (summary.succeeded, summary.failed) == (3_000, 0)
    assert len(sandbox.customers) == 3_000
    # it learned the cap: refused requests are few, not a steady stream
    requests, refused = sandbox.request_count, sandbox.fault_counts["max_concurrent"]
    assert requests >= 300 and refused <= 0.1 * requests, (refused, requests)
    assert engine._sender is not None and engine._sender.limit.current <= 3
    # and said so while it ran
    shown = [(p.concurrency, p.concurrency_ceiling) for p in listener.progress_reports
             if p.state == ImportState.RUNNING]
    assert (2, 8) in shown and all(c <= 8 for c, _ in shown)


async def test_a_service_that_queues_gets_fewer_requests_at_once(make_engine, sandbox,
                                                                 tmp_path):
    sandbox.config.workers = 2  # more than 2 in flight wait: answers slow down, none fail
    sandbox.config.latency_ms = 20
    source = tmp_path / "kunder.json"
    write_customer_file(source, generate_customers(2_000))
    listener = RecordingListener()
    engine = make_engine([source], listener=listener, batch_size=10, concurrency=8)
    summary = await engine.run()
    assert (summary.succeeded, summary.failed) == (2_000, 0)
    assert sandbox.fault_counts.total() == 0
    # after the first rounds it keeps near what the service works on (2), plus a few
    shown = [p.concurrency for p in listener.progress_reports if p.state == ImportState.RUNNING]
    later = shown[len(shown) // 3:]
    assert len(later) >= 5 and sum(later) / len(later) <= 5, shown


async def test_the_limit_never_exceeds_the_users_setting_and_cuts_once_per_round():
    clock = [0.0]
    limit = AdaptiveLimit(4, clock=lambda: clock[0])
    in_flight_seen = []

    async def request(overloaded: bool) -> None:
        async with limit.slot() as slot:
            in_flight_seen.append(limit.in_flight)
            await asyncio.sleep(0)  # the others get to ask for a place meanwhile
            await limit.observe(slot, overloaded=overloaded)

    # slow start: good answers while requests queue up raise the limit to the ceiling
    await asyncio.gather(*(request(False) for _ in range(40)))
    assert limit.current == 4 and max(in_flight_seen) == 4
    # a burst of refusals sent at one level counts as one cut
    slots = []
    for _ in range(4):
        manager = limit.slot()
        slots.append((manager, await manager.__aenter__()))
    for manager, slot in slots:
        await limit.observe(slot, overloaded=True)
        await manager.__aexit__(None, None, None)
    assert limit.cuts == 1 and limit.current == 3
    # right after a refusal, the refused level is not tried again at once
    await asyncio.gather(*(request(False) for _ in range(40)))
    assert limit.current == 3
    clock[0] += 5  # after the pause, it is
    await asyncio.gather(*(request(False) for _ in range(40)))
    assert limit.current == 4


async def test_jittery_answers_do_not_drag_the_limit_down():
    # answers from an unloaded service on a busy network: 3 or 6 ms at random, whatever
    # the number in flight. Nothing queues, so nothing should be taken away.
    clock = [0.0]
    limit = AdaptiveLimit(5, clock=lambda: clock[0])
    jitter = random.Random(7)
    lowest_after_start: list[int] = []

    async def request() -> None:
        async with limit.slot() as slot:
            await asyncio.sleep(0)
            clock[0] = slot.sent_at + jitter.choice((0.003, 0.006))
            await limit.observe(slot, overloaded=False)
            if slot.sequence > 50:
                lowest_after_start.append(limit.current)

    await asyncio.gather(*(request() for _ in range(600)))
    assert len(lowest_after_start) == 550
    assert min(lowest_after_start) >= 4 and limit.current == 5, limit.current
