"""docs/reference/http-api.md and docs/reference/openapi.json, from the `/openapi.json` a gateway
serves: the dev-mode gateway (`serve --dev`: the sandbox, a memory store, one provider per kind),
built in-process and asked over HTTP on loopback."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from tools.gendocs.markdown import code, header, page, table

PROBLEM_SCHEMA = "#/components/schemas/Problem"


@dataclass(frozen=True)
class ServedApi:
    openapi: dict[str, Any]
    dev_providers: dict[str, str]  # kind -> the dev-mode provider of that kind


def served_api() -> ServedApi:
    return asyncio.run(_served_api())


async def _served_api() -> ServedApi:
    import aiohttp
    from aiohttp.test_utils import TestServer

    from gateway.app import create_app
    from gateway.devmode import start_dev_environment

    dev = await start_dev_environment("127.0.0.1", 0)
    try:
        server = TestServer(create_app(dev.settings), host="127.0.0.1")
        await server.start_server()
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.get(server.make_url("/openapi.json")) as response,
            ):
                response.raise_for_status()
                document: dict[str, Any] = await response.json()
        finally:
            await server.close()
    finally:
        await dev.sandbox.cleanup()
    providers = {str(settings.kind): name for name, settings in dev.settings.providers.items()}
    return ServedApi(document, providers)


def openapi_json(api: ServedApi) -> str:
    return json.dumps(api.openapi, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def http_api_page(api: ServedApi) -> str:
    from tools.gendocs.kinds_ref import slug

    doc = api.openapi
    lines = header(
        "HTTP API",
        "the /openapi.json of the dev-mode gateway (gateway/api/openapi.py)",
        f"OpenAPI {doc['openapi']}, *{doc['info']['title']}* {doc['info']['version']}. The whole "
        "document, as a gateway serves it at `GET /openapi.json` to a reader without a key: "
        "[openapi.json](openapi.json). It is the same for every deployment with the same installed "
        "kinds, so a client generated from it (the Python one: `clients/python/`, `make client`) "
        "works against every environment. Calls to `/auth` need `Authorization: Bearer <api key>`; "
        "every answer carries `X-Request-ID` (the caller's, or one the gateway made).",
    )
    rows = [
        [
            f"`{method.upper()} {path}`",
            code(operation["operationId"]),
            operation["summary"],
            auth(operation),
        ]
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    ]
    lines += ["## Endpoints", "", *table(["call", "operationId", "what", "key"], rows)]
    generic = doc["paths"]["/auth/{provider}"]
    body = generic["post"]["requestBody"]["content"]["application/json"]
    kinds = {example["summary"]: example for example in body["examples"].values()}
    inputs = [one["$ref"].rsplit("/", 1)[-1] for one in body["schema"]["oneOf"]]
    lines += [
        "## Request bodies",
        "",
        "The body of `POST` and `DELETE /auth/{provider}` is the input of the provider's kind: "
        "`oneOf` the installed kinds' input schemas (each refuses members it does not know, so a "
        "body matches exactly one). Each kind's example is in the document:",
        "",
        *table(
            ["kind", "input schema", "example"],
            (
                [
                    f"[{code(kind)}](../kinds/{slug(kind)}.md)",
                    code(schema),
                    code(json.dumps(kinds[kind]["value"], ensure_ascii=False)),
                ]
                for kind, schema in zip(kinds, inputs, strict=True)
            ),
        ),
        "A caller that reads `/openapi.json` with its key also finds one typed operation per "
        "provider it may use: `POST`/`DELETE /auth/<provider>` (`login_<provider>`, "
        "`forget_<provider>`), whose body is that kind's schema alone. A reader without a valid "
        "key sees no provider names.",
        "",
    ]
    post, delete = generic["post"], generic["delete"]
    lines += ["## Request headers", ""]
    lines += table(
        ["header", "required", "meaning"],
        (
            [code(p["name"]), "yes" if p.get("required") else "no", p.get("description", "")]
            for p in post.get("parameters", [])
        ),
    )
    lines += ["## Responses", ""]
    lines += table(
        ["status", "POST", "DELETE"],
        (
            [
                code(status),
                response_text(post["responses"].get(status)),
                response_text(delete["responses"].get(status)),
            ]
            for status in sorted(set(post["responses"]) | set(delete["responses"]))
        ),
    )
    lines += ["## Response headers", ""]
    lines += table(
        ["header", "meaning"],
        ([code(name), h["description"]] for name, h in doc["components"]["headers"].items()),
    )
    schemas = doc["components"]["schemas"]
    for name in (
        "LoginResult",
        "Problem",
        "UpstreamDetail",
        "FieldError",
        "ProviderList",
        "Readiness",
    ):
        if name in schemas:
            lines += [f"## {name}", "", *schema_table(schemas[name])]
    lines += [
        "`kind` is one of the installed kinds (`Kind`: "
        + ", ".join(code(kind) for kind in schemas["Kind"]["enum"])
        + "). Problem codes, with their statuses: the [error catalogue](errors.md) (`code` is "
        "an enum of it; also in this document as `x-error-catalogue`).",
        "",
    ]
    return page(lines)


def auth(operation: dict[str, Any]) -> str:
    return "Bearer" if operation.get("security") else "none"


def response_text(response: dict[str, Any] | None) -> str:
    if response is None:
        return "—"
    content = response.get("content", {})
    kinds = [
        f"{media} ({str(body.get('schema', {}).get('$ref', '')).rsplit('/', 1)[-1]})"
        for media, body in content.items()
    ]
    return str(response.get("description", "")) + (f": {', '.join(kinds)}" if kinds else "")


def schema_table(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    return table(
        ["member", "type", "always there", "meaning"],
        (
            [
                code(name),
                type_text(prop),
                "yes" if name in required else "no",
                prop.get("description", ""),
            ]
            for name, prop in schema.get("properties", {}).items()
        ),
    )


def type_text(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "oneOf" in prop:
        return " or ".join(type_text(one) for one in prop["oneOf"])
    if prop.get("type") == "array":
        return f"array of {type_text(prop.get('items', {}))}"
    kind = prop.get("type", "object")
    if isinstance(kind, list):
        return " or ".join(kind)
    return str(kind)
