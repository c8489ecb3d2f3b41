"""The gateway's own OpenAPI document, turned into several hundred generated requests by schemathesis.

A real gateway (real Redis, the vendor sandbox behind it) serves on a loopback port from an event loop in
a thread of its own, because schemathesis sends with blocking `requests`. Cases come from the document
the gateway serves at `/openapi.json`: valid ("positive") and schema-violating ("negative") bodies and
headers for every operation, with the caller's key, with a key limited to one provider, and with keys
schemathesis makes up. Then bodies too deep for schemathesis to build are sent by hand.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections import Counter
from collections.abc import Coroutine, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
import requests
import schemathesis
import structlog
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.app import create_app
from gateway.sandbox.app import start_sandbox
from gateway.sandbox.state import SandboxState
from tests.api.conftest import (
    BIND,
    INPUTS,
    TENCENT_KEY,
    TOP_KEY,
    WECHAT,
    Keys,
    Vendors,
    gateway_settings,
)

pytestmark = pytest.mark.redis

PROBLEM = "application/problem+json"
PROBLEM_MEMBERS = ("type", "title", "status", "detail", "code")
# A 502/503/504 problem is the vendor's answer passed on, not a gateway fault (counted, and with a
# healthy sandbox required to be zero).
VENDOR_STATUSES = (502, 503, 504)
EXAMPLES_PER_OPERATION = 40  # per operation and generation mode: ~700 cases, a few seconds
SCHEMA_CHECKS = [
    status_code_conformance,
    content_type_conformance,
    ignored_auth,  # a 2xx is re-sent without the key, and with a wrong one: both must be refused
    response_schema_conformance,
    negative_data_rejection,
]
T = TypeVar("T")


@dataclass
class LiveGateway:
    """The sandbox and a gateway on loopback ports, served by an event loop running in another thread;
    `events` are the gateway's log events (captured, not rendered)."""

    url: str
    keys: Keys
    vendors: Vendors
    events: list[MutableMapping[str, Any]]

    def unhandled_errors(self) -> list[str]:
        return [str(e.get("path", "?")) for e in self.events if e["event"] == "unhandled_error"]


@contextmanager
def live_gateway(redis_url: str, key_prefix: str) -> Iterator[LiveGateway]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="live-gateway", daemon=True)
    thread.start()

    def run(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=30)

    top_secret, tencent_secret = secrets.token_hex(16), secrets.token_hex(16)
    state = SandboxState(top_apps={TOP_KEY: top_secret}, tencent_apps={TENCENT_KEY: tencent_secret})
    sandbox, sandbox_url = run(start_sandbox(state))
    vendors = Vendors(state, sandbox_url, top_secret, tencent_secret)
    keys = Keys(full=secrets.token_urlsafe(24), wechat_only=secrets.token_urlsafe(24))
    runner = web.AppRunner(
        create_app(gateway_settings(vendors, keys, redis_url, key_prefix)), access_log=None
    )
    try:
        with structlog.testing.capture_logs() as events:
            run(runner.setup())
            run(web.TCPSite(runner, "127.0.0.1", 0).start())
            port = runner.addresses[0][1]
            yield LiveGateway(f"http://127.0.0.1:{port}", keys, vendors, events)
    finally:
        run(runner.cleanup())
        run(sandbox.cleanup())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@dataclass
class Tally:
    """What came back, per operation, mode and status; and every response that broke a rule."""

    statuses: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    vendor_caused: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def cases(self) -> int:
        return sum(self.statuses.values())

    def accepted(self, label: str) -> int:
        return sum(
            n for (op, _, status), n in self.statuses.items() if op == label and status < 300
        )

    def summary(self) -> str:
        lines = [f"{self.cases} cases; vendor-caused 5xx: {len(self.vendor_caused)}"]
        lines += [
            f"  {op} [{mode}] -> {status}: {n}" for (op, mode, status), n in self.statuses.items()
        ]
        return "\n".join(lines)


def header(response: schemathesis.Response, name: str) -> str | None:
    """A response header's first value (schemathesis keeps them lower-cased, as lists)."""
    values = response.headers.get(name.lower())
    return values[0] if values else None


def problem_violations(response: schemathesis.Response) -> list[str]:
    """Why `response` is not an RFC 9457 problem document as the contract describes it (empty: it is)."""
    media_type = (header(response, "Content-Type") or "").split(";")[0].strip()
    if media_type != PROBLEM:
        return [f"content type {media_type!r}, not {PROBLEM}"]
    try:
        document = response.json()
    except ValueError:
        return ["body is not JSON"]
    if not isinstance(document, dict):
        return ["body is not a JSON object"]
    wrong = [f"no {name!r}" for name in PROBLEM_MEMBERS if name not in document]
    if document.get("status") != response.status_code:
        wrong.append(f"status member {document.get('status')!r} != HTTP {response.status_code}")
    if document.get("type") != f"urn:auth-gateway:problem:{document.get('code')}":
        wrong.append(f"type {document.get('type')!r} does not name code {document.get('code')!r}")
    if response.status_code == 429 and header(response, "Retry-After") is None:
        wrong.append("429 without Retry-After")
    return wrong


def judge(
    case: Any, response: schemathesis.Response, mode: str, headers: dict[str, str], tally: Tally
) -> None:
    """Record the response, and every way in which it breaks the contract."""
    label = case.operation.label
    status = response.status_code
    tally.statuses[(label, mode, status)] += 1
    where = f"{label} [{mode}] {status} body={case.body!r:.200} headers={case.headers!r:.200}"
    wrong: list[str] = []
    if status >= 400:
        wrong += problem_violations(response)
    if status >= 500 and not wrong and status in VENDOR_STATUSES:
        tally.vendor_caused.append(f"{where}: {response.text[:300]}")
    elif status >= 500:
        wrong.append("server error")
    if header(response, "X-Request-ID") is None:
        wrong.append("no X-Request-ID")
    try:
        # `headers`: what the test set itself (the key), so schemathesis treats it as real auth.
        case.validate_response(response, checks=SCHEMA_CHECKS, headers=headers)
    except FailureGroup as failed:
        wrong += [f"schemathesis: {str(one)[:400]}" for one in failed.exceptions]
    except Failure as failed:
        wrong.append(f"schemathesis: {str(failed)[:400]}")
    if wrong:
        tally.failures.append(f"{where}: {'; '.join(wrong)} :: {response.text[:300]}")


def can_break(operation: Any, fixed_headers: dict[str, str]) -> bool:
    """Whether the operation has a body or a parameter (other than the fixed ones) a case could break."""
    fixed = {name.lower() for name in fixed_headers}
    return bool(operation.body) or any(
        parameter.name.lower() not in fixed for parameter in operation.iter_parameters()
    )


def send_generated(
    operation: Any,
    generation_mode: GenerationMode,
    headers: dict[str, str],
    examples: int,
    live: LiveGateway,
    session: requests.Session,
    tally: Tally,
    mode: str,
) -> None:
    """Send `examples` generated cases of one operation to the live gateway and judge each answer."""

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,  # the same cases every run
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=generation_mode, headers=headers))
    def send(case: Any) -> None:
        response = case.call(base_url=live.url, session=session, timeout=15)
        judge(case, response, mode, headers, tally)

    send()


def test_generated_requests_never_get_a_server_error_and_every_4xx_is_a_problem(
    redis_url: str, key_prefix: str
) -> None:
    """Several hundred positive and negative cases from /openapi.json: no 5xx, every 4xx a valid problem."""
    with live_gateway(redis_url, key_prefix) as live, requests.Session() as session:
        # With the key: the generic operations and the typed one of each provider it may use.
        document = session.get(
            f"{live.url}/openapi.json",
            headers={"Authorization": f"Bearer {live.keys.full}"},
            timeout=10,
        ).json()
        schema = schemathesis.openapi.from_dict(document)
        tally = Tally()
        passes = [
            ("positive", GenerationMode.POSITIVE, live.keys.full, EXAMPLES_PER_OPERATION),
            ("negative", GenerationMode.NEGATIVE, live.keys.full, EXAMPLES_PER_OPERATION),
            ("one-provider key", GenerationMode.POSITIVE, live.keys.wechat_only, 5),
            ("generated key", GenerationMode.POSITIVE, None, 3),
        ]
        operations = [result.ok() for result in schema.get_all_operations()]
        for mode, generation_mode, key, examples in passes:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            for operation in operations:
                if generation_mode is GenerationMode.NEGATIVE and not can_break(operation, headers):
                    continue  # nothing to make invalid (hypothesis would call it unsatisfiable)
                send_generated(
                    operation, generation_mode, headers, examples, live, session, tally, mode
                )

        unhandled = live.unhandled_errors()
    print(tally.summary())  # shown with -s / on failure: what the run covered
    for line in tally.vendor_caused:
        print("vendor-caused:", line)
    assert not tally.failures, "\n".join(tally.failures[:20])
    assert not unhandled, f"unhandled errors logged: {unhandled}"
    assert tally.cases >= 300, tally.summary()
    assert not tally.vendor_caused, "a healthy sandbox caused 5xx:\n" + "\n".join(
        tally.vendor_caused[:10]
    )
    login = f"POST /auth/{WECHAT}"
    assert tally.accepted(login) > 0, f"no generated {login} was accepted:\n{tally.summary()}"
    statuses = {status for (_, _, status) in tally.statuses}
    assert {200, 204, 400, 401, 403} <= statuses, tally.summary()


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def test_valid_bodies_the_generator_does_not_reach_are_no_server_error(
    redis_url: str, key_prefix: str
) -> None:
    """A schema-valid body schemathesis cannot build (`params` 300 levels deep) gets no 5xx either."""
    with live_gateway(redis_url, key_prefix) as live, requests.Session() as session:
        sent = session.post(
            f"{live.url}/auth/{BIND}",
            json={**INPUTS[BIND], "params": nested(300)},  # too deep for schemathesis's serializer
            headers={"Authorization": f"Bearer {live.keys.full}"},
            timeout=15,
        )
        response = schemathesis.Response.from_any(sent)
        unhandled = live.unhandled_errors()
    assert response.status_code < 500, f"{response.status_code}: {response.text}"
    assert response.status_code < 400 or not problem_violations(response), response.text
    assert not unhandled, f"unhandled errors logged: {unhandled}"
