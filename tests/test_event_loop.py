"""The window's event loop: cancelled timers go at once, the others still fire in order."""

from __future__ import annotations

import asyncio
import gc
import weakref


def test_cancelled_timers_are_let_go_at_once(qloop):
    class Payload:
        pass

    payloads = [Payload() for _ in range(1000)]
    alive = [weakref.ref(p) for p in payloads]
    # like every request's timeout: scheduled for a minute, cancelled when the answer came
    handles = [qloop.call_later(60, lambda p=p: p) for p in payloads]
    handles_alive = [weakref.ref(h) for h in handles]
    assert qloop.pending_timers == 1000
    del payloads
    for handle in handles:
        handle.cancel()
    del handles, handle
    assert qloop.pending_timers == 0
    # the handles themselves (and the context each holds) are gone, not kept until due
    assert sum(1 for ref in handles_alive if ref() is not None) == 0
    assert sum(1 for ref in alive if ref() is not None) == 0


def test_timers_fire_in_order_and_cancelled_ones_never(qloop):
    fired: list[str] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(0.03, fired.append, "Åsa")
        loop.call_later(0.01, fired.append, "Örjan")
        cancelled = loop.call_later(0.02, fired.append, "Élodie")
        loop.call_soon(fired.append, "first")
        cancelled.cancel()
        done = loop.create_future()
        loop.call_later(0.05, done.set_result, None)
        await done

    qloop.run_until_complete(scenario())
    assert fired == ["first", "Örjan", "Åsa"]
    assert qloop.pending_timers == 0


def test_a_timeout_that_did_not_expire_leaves_nothing_behind(qloop):
    async def answered_in_time() -> str:
        async with asyncio.timeout(60):
            await asyncio.sleep(0)
            return "answer"

    async def many() -> list[str]:
        return [await answered_in_time() for _ in range(200)]

    assert len(qloop.run_until_complete(many())) == 200
    gc.collect()
    assert qloop.pending_timers == 0
