"""The stream every log line goes through (gateway.log_processors.CurrentStdout): the request lines of
one event-loop turn leave in one write(), flushed lines go out at once and in order, no write splits a
line or passes PIPE_BUF, and no line waits past its loop's turn."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator

import pytest

from gateway.log_processors import CurrentStdout

PIPE_BUF = 4096


class Recorder:
    """stdout as the process sees it: what each write() handed the OS."""

    def __init__(self) -> None:
        self.writes: list[str] = []
        self._pending: list[str] = []

    def write(self, text: str) -> int:
        self._pending.append(text)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self.writes.append("".join(self._pending))
            self._pending.clear()


@contextlib.contextmanager
def recorded_stdout() -> Iterator[Recorder]:
    """sys.stdout replaced inside the test's body (pytest's capture resets it after fixture set-up)."""
    recorder, stdout = Recorder(), sys.stdout
    sys.stdout = recorder  # type: ignore[assignment]
    try:
        yield recorder
    finally:
        sys.stdout = stdout


def test_a_turns_lines_leave_together_before_the_loop_can_block() -> None:
    with recorded_stdout() as stdout:
        stream = CurrentStdout()

        async def three_requests_in_one_turn() -> list[str]:
            for n in range(3):
                stream.write(f'{{"request":{n}}}\n')
            kept = list(stdout.writes)
            await asyncio.sleep(0)  # the turn ends: the flush is the next callback
            return kept

        assert asyncio.run(three_requests_in_one_turn()) == []
        assert stdout.writes == ['{"request":0}\n{"request":1}\n{"request":2}\n']


def test_a_flushed_line_goes_out_at_once_behind_the_lines_kept_before_it() -> None:
    """structlog and the stdlib handler flush after each line: an error line is not held back, and the
    request lines of the same turn stay ahead of it."""
    with recorded_stdout() as stdout:
        stream = CurrentStdout()

        async def a_request_then_an_error() -> list[str]:
            stream.write("request\n")
            stream.write("error\n")
            stream.flush()
            return list(stdout.writes)

        assert asyncio.run(a_request_then_an_error()) == ["request\nerror\n"]


def test_writes_hold_whole_lines_of_at_most_pipe_buf_bytes() -> None:
    """`serve --workers` share stdout: a pipe write past PIPE_BUF may be spliced with another's."""
    with recorded_stdout() as stdout:
        stream = CurrentStdout()
        lines = [f"{n:03d}{'x' * 396}\n" for n in range(30)]  # 400 bytes each
        lines.insert(10, "é" * 1500 + "\n")  # 1,500 characters, 3,001 bytes
        lines.insert(20, "y" * 9000 + "\n")  # longer than PIPE_BUF alone

        async def one_turn() -> None:
            for line in lines:
                stream.write(line)

        asyncio.run(one_turn())
        assert "".join(stdout.writes) == "".join(lines)
        assert all(write.endswith("\n") for write in stdout.writes)
        assert [len(w.encode()) for w in stdout.writes if len(w.encode()) > PIPE_BUF] == [9001]
        assert len(stdout.writes) < len(lines) / 4


def test_outside_a_running_loop_a_line_is_written_at_once() -> None:
    with recorded_stdout() as stdout:
        CurrentStdout().write("starting\n")
        assert stdout.writes == ["starting\n"]


def test_a_loop_that_closed_with_its_flush_pending_holds_back_no_later_line() -> None:
    with recorded_stdout() as stdout:
        stream = CurrentStdout()
        first = asyncio.new_event_loop()

        async def write_then_stop() -> None:
            stream.write("last line of the first loop\n")
            asyncio.get_running_loop().stop()  # the loop ends with this turn: its flush never runs
            await asyncio.Event().wait()

        with pytest.raises(RuntimeError):
            first.run_until_complete(write_then_stop())
        first.close()
        assert stdout.writes == []

        async def next_loop() -> None:
            stream.write("first line of the next\n")
            await asyncio.sleep(0)

        asyncio.run(next_loop())
        assert stdout.writes == ["last line of the first loop\nfirst line of the next\n"]
