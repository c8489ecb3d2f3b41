"""The OpenAPI document as a client team's generator reads it: valid, stable across configurations,
complete about what the server sends, and showing provider names only to a caller that may use them.

What the server really answers is checked against it by tests/api/test_contract.py."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from gateway.api.openapi import openapi_document, sorted_kinds
from gateway.catalogue import ERROR_CATALOGUE
from gateway.providers.registry import bind_providers, installed_kinds
from gateway.settings import Settings
from tests.api.conftest import KINDS, WECHAT, Keys, Vendors, provider_config, sha256_hex

GENERIC = "/auth/{provider}"


async def served(gateway: TestClient, key: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = await gateway.get("/openapi.json", headers=headers)
    assert response.status == 200
    document: dict[str, Any] = await response.json()
    return document


def without_provider_paths(document: dict[str, Any]) -> dict[str, Any]:
    """The document less its per-provider operations (the only part that may differ by config)."""
    paths = {
        path: item
        for path, item in document["paths"].items()
        if path == GENERIC or not path.startswith("/auth/")
    }
    return {**document, "paths": paths}


@pytest.mark.redis
async def test_anonymous_readers_see_the_stable_document_without_provider_names(
    gateway: TestClient,
) -> None:
    """No key, or a wrong one: the generic operations only, and no configured provider named."""
    for key in (None, "not-a-key"):
        document = await served(gateway, key)
        validate(document)
        assert [p for p in document["paths"] if p.startswith("/auth/")] == [GENERIC]
        text = json.dumps(document)
        assert not [name for name in KINDS if name in text]


@pytest.mark.redis
async def test_a_caller_sees_typed_operations_for_its_own_providers_only(
    gateway: TestClient, keys: Keys
) -> None:
    """A key limited to one provider sees that provider's operations; a `*` key sees all; the rest
    of the document is byte for byte the anonymous one."""
    anonymous = await served(gateway)
    limited = await served(gateway, keys.wechat_only)
    full = await served(gateway, keys.full)
    for document in (limited, full):
        validate(document)
        assert without_provider_paths(document) == anonymous
    assert [p for p in limited["paths"] if p.startswith("/auth/")] == [GENERIC, f"/auth/{WECHAT}"]
    assert {p for p in full["paths"] if p.startswith("/auth/")} == {GENERIC} | {
        f"/auth/{name}" for name in KINDS
    }
    post = limited["paths"][f"/auth/{WECHAT}"]["post"]
    assert post["operationId"] == "login_tencent_wechat"
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WeChatLoginInputs"
    }


def test_two_configurations_with_the_same_kinds_differ_only_in_provider_operations(
    vendors: Vendors,
) -> None:
    """Other provider names, other kinds configured, other clients: same generic part and components."""
    one = bind_providers(Settings(providers=provider_config(vendors)).providers)
    other_config = {"login-" + name: value for name, value in provider_config(vendors).items()}
    other = bind_providers(
        Settings(
            providers={k: v for k, v in other_config.items() if "wechat" in k},
            clients={"x": {"api_key_sha256": sha256_hex("k"), "providers": ["*"]}},
        ).providers
    )
    first, second = openapi_document(one.values()), openapi_document(other.values())
    assert first != second
    assert without_provider_paths(first) == without_provider_paths(second) == openapi_document()


def test_enums_come_from_the_catalogue_and_the_installed_kinds() -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]
    codes = schemas["Problem"]["properties"]["code"]["enum"]
    assert codes == [entry.code for entry in ERROR_CATALOGUE]
    assert schemas["Kind"]["enum"] == sorted(installed_kinds())
    assert schemas["LoginResult"]["properties"]["kind"] == {"$ref": "#/components/schemas/Kind"}


def test_always_present_members_are_required_and_sent_ones_declared() -> None:
    """`provider`, `retryable`, `upstream`, `request_id` always come (maybe null): required. `errors`,
    `stale` and `instance` come sometimes: declared. Nothing else is allowed."""
    schemas = openapi_document()["components"]["schemas"]
    problem, result = schemas["Problem"], schemas["LoginResult"]
    assert {"provider", "retryable", "upstream", "request_id"} <= set(problem["required"])
    assert {"errors", "instance"} <= set(problem["properties"]) - set(problem["required"])
    assert "stale" in set(result["properties"]) - set(result["required"])
    assert problem["additionalProperties"] is False and result["additionalProperties"] is False


def test_the_generic_body_is_exactly_one_kind_and_examples_are_the_kinds_own() -> None:
    """Each kind's example inputs are the example of its schema and of the generic operation, and
    match exactly one kind's schema (so `oneOf` holds for every real body)."""
    document = openapi_document()
    schemas = document["components"]["schemas"]
    body = document["paths"][GENERIC]["post"]["requestBody"]["content"]["application/json"]
    branches = [schemas[one["$ref"].rsplit("/", 1)[1]] for one in body["schema"]["oneOf"]]
    assert len(branches) == len(installed_kinds())
    examples = {example["summary"]: example["value"] for example in body["examples"].values()}
    for kind in sorted_kinds():
        assert examples[kind.kind] == dict(kind.example_inputs)
        matching = [
            s for s in branches if jsonschema.Draft202012Validator(s).is_valid(examples[kind.kind])
        ]
        assert len(matching) == 1, kind.kind
        assert matching[0]["examples"] == [dict(kind.example_inputs)]


def test_each_operation_declares_only_statuses_it_can_answer_and_its_headers() -> None:
    """413/415 only where a body is read; Retry-After where one is sent; X-Request-ID on every answer."""
    paths = openapi_document()["paths"]
    listing = paths["/auth"]["get"]["responses"]
    assert "413" not in listing and "415" not in listing and "401" in listing
    login = paths[GENERIC]["post"]["responses"]
    assert {"405", "500", "422", "429", "503", "504"} <= set(login)
    forget = paths[GENERIC]["delete"]["responses"]
    assert "204" in forget and not {"422", "502", "504"} & set(forget)
    for status in ("422", "429", "503"):
        assert "Retry-After" in login[status]["headers"]
    assert "Retry-After" not in forget["503"]["headers"]
    assert set(paths["/readyz"]["get"]["responses"]) >= {"200", "503"}
    for item in paths.values():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert operation["operationId"] and operation["tags"]
            for response in operation["responses"].values():
                assert "X-Request-ID" in response["headers"]
