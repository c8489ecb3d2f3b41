"""Every redis-py failure becomes `StoreUnavailable`, whose `kind` says whether the server is down,
refused the command, or (Cluster) moved its slot. Its message names the operation and, for transport
failures, the socket error; it never carries a key's value, and the original exception is not chained
because some server replies echo the command's arguments.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from redis.exceptions import AskError, ClusterDownError, MovedError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.store import StoreUnavailable, UnavailableKind

# Errors that describe the connection, never the command's arguments, so their text is safe to repeat.
_TRANSPORT_ERRORS: Final = (RedisConnectionError, RedisTimeoutError, OSError)


def unavailable(operation: str, error: RedisError | OSError) -> StoreUnavailable:
    """The StoreUnavailable a redis-py failure of `operation` stands for (raise it `from None`)."""
    kind, moved_to = _classify(error)
    return StoreUnavailable(
        f"redis {operation} failed: {_describe(error)}", kind=kind, moved_to=moved_to
    )


@contextmanager
def unavailable_on_error(operation: str) -> Iterator[None]:
    """Turn redis-py failures into StoreUnavailable, and give back a cancellation redis-py swallowed
    (the pub/sub calls; a command's own deadline does both, gateway.store.deadlines)."""
    task = asyncio.current_task()
    cancels_before = task.cancelling() if task is not None else 0
    try:
        yield
    except (RedisError, OSError) as error:
        _raise_if_cancellation_was_swallowed(task, cancels_before)
        raise unavailable(operation, error) from None
    _raise_if_cancellation_was_swallowed(task, cancels_before)


def _classify(error: BaseException) -> tuple[UnavailableKind, tuple[str, int] | None]:
    if isinstance(error, MovedError):  # before AskError, which it subclasses
        return "moved", (str(error.host), int(error.port))
    if isinstance(error, (*_TRANSPORT_ERRORS, ClusterDownError)):
        return "down", None
    # An error reply, a slot being migrated (AskError) included: the server answered.
    return "refused", None


def _raise_if_cancellation_was_swallowed(
    task: asyncio.Task[Any] | None, cancels_before: int
) -> None:
    # On Python 3.11 asyncio.wait_for, which redis-py uses to time socket writes, drops a cancel() that
    # lands just as the write completes (CPython gh-86296, fixed in 3.12): the call returns normally and
    # the task runs on, so a cancelled subscriber would loop forever and shutdown would hang. A cancel
    # request that arrived during the call and is still pending means exactly that; deliver it.
    if task is not None and task.cancelling() > cancels_before:
        raise asyncio.CancelledError


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError) and not str(
        error
    ):  # the store's own deadline (gateway.store.deadlines, or asyncio.timeout on pub/sub)
        return "TimeoutError: no reply within the command deadline"
    if isinstance(error, _TRANSPORT_ERRORS):
        return f"{type(error).__name__}: {error}"
    if isinstance(error, AskError | ClusterDownError):
        # "MOVED 3999 10.0.0.5:6379", "CLUSTERDOWN Hash slot not served": no command arguments.
        return f"{type(error).__name__}: {error}"
    # Server replies (e.g. "unknown command … with args beginning with: …") may quote the value.
    return type(error).__name__
