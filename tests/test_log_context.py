"""The request's log fields: what a line carries, and which binds reach which lines."""

from __future__ import annotations

import asyncio
import contextvars

from gateway.log_context import bind_log_context, merge_log_context, new_log_context


def fields_of_a_line(**event: object) -> dict[str, object]:
    return dict(merge_log_context(None, "info", dict(event)))


def test_a_line_carries_the_bound_fields_and_its_own_keys_win() -> None:
    def request() -> None:
        new_log_context(request_id="r-1")
        bind_log_context(client="billing-app", cache="miss")
        assert fields_of_a_line(event="request", cache="hit") == {
            "request_id": "r-1",
            "client": "billing-app",
            "cache": "hit",
            "event": "request",
        }

    contextvars.copy_context().run(request)


def test_a_new_request_starts_without_the_last_ones_fields() -> None:
    def two_requests_on_one_task() -> None:
        new_log_context(request_id="r-1")
        bind_log_context(client="billing-app", vendor_ms=12.5)
        new_log_context(request_id="r-2")
        assert fields_of_a_line(event="request") == {"request_id": "r-2", "event": "request"}

    contextvars.copy_context().run(two_requests_on_one_task)


def test_outside_any_request_a_line_is_left_as_it_is() -> None:
    event = {"event": "store_down"}
    assert contextvars.Context().run(merge_log_context, None, "warning", event) is event


async def test_a_task_sees_what_was_bound_before_it_started_and_keeps_its_own_binds() -> None:
    """A shared vendor call started by one request logs with that request's fields; what it binds
    never shows up in the request's own line, nor what the request binds later in the task's."""

    async def in_the_flight() -> dict[str, object]:
        await asyncio.sleep(0)
        bind_log_context(cache="stale")
        await asyncio.sleep(0.01)
        return fields_of_a_line(event="vendor_retry")

    async def request() -> tuple[dict[str, object], dict[str, object]]:
        new_log_context(request_id="r-1")
        flight = asyncio.ensure_future(in_the_flight())
        bind_log_context(client="billing-app")
        flight_fields = await flight
        return fields_of_a_line(event="request"), flight_fields

    request_fields, flight_fields = await asyncio.ensure_future(request())
    assert request_fields == {"request_id": "r-1", "client": "billing-app", "event": "request"}
    assert flight_fields == {"request_id": "r-1", "cache": "stale", "event": "vendor_retry"}
