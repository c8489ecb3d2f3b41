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
        "document, as the dev-mode gateway serves it at `GET /openapi.json`: "
        "[openapi.json](openapi.json) (a gateway serves its own, with its configured providers). "
        "Calls to `/auth` need `Authorization: Bearer <api key>`; every answer carries "
        "`X-Request-ID` (the caller's, or one the gateway made).",
    )
    auth_paths = {p: ops for p, ops in doc["paths"].items() if p.startswith("/auth/")}
    rows = []
    for path, operations in doc["paths"].items():
        if path in auth_paths:
            continue
        for method, operation in operations.items():
            rows.append(
                [f"`{method.upper()} {path}`", operation.get("summary", ""), auth(operation)]
            )
    provider_kinds = {name: kind for kind, name in api.dev_providers.items()}
    example = next(iter(auth_paths.items()), None)
    if example is not None:
        kind = provider_kinds.get(example[0].removeprefix("/auth/"), "")
        for method, operation in reversed(example[1].items()):
            summary = str(operation.get("summary", ""))
            summary = summary.replace(kind, "<kind>") if kind else summary
            rows.insert(0, [f"`{method.upper()} /auth/{{provider}}`", summary, auth(operation)])
    lines += ["## Endpoints", "", *table(["call", "what", "key"], rows)]

    lines += [
        "## One path per provider",
        "",
        "Each configured provider has its own `/auth/<provider>` path, whose request body is its "
        "kind's input schema. The dev-mode gateway's:",
        "",
    ]
    lines += table(
        ["path", "kind", "body schema"],
        (
            [
                code(path),
                f"[{code(provider_kinds[name])}](../kinds/{slug(provider_kinds[name])}.md)"
                if (name := path.removeprefix("/auth/")) in provider_kinds
                else "—",
                code(body_schema_name(ops)),
            ]
            for path, ops in auth_paths.items()
        ),
    )
    if example is not None:
        post = example[1]["post"]
        lines += ["## Request", ""]
        lines += table(
            ["parameter", "in", "required", "meaning"],
            (
                [
                    code(p["name"]),
                    p["in"],
                    "yes" if p.get("required") else "no",
                    p.get("description", ""),
                ]
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
                    response_text(example[1].get("delete", {}).get("responses", {}).get(status)),
                ]
                for status in sorted(
                    set(post["responses"]) | set(example[1].get("delete", {}).get("responses", {}))
                )
            ),
        )
    schemas = doc["components"]["schemas"]
    for name in ("LoginResult", "Problem"):
        if name in schemas:
            lines += [f"## {name}", "", *schema_table(schemas[name])]
    lines += [
        "Problem codes, with their statuses: the [error catalogue](errors.md) (also in this "
        "document as `x-error-catalogue`).",
        "",
    ]
    return page(lines)


def auth(operation: dict[str, Any]) -> str:
    return "Bearer" if operation.get("security") else "none"


def body_schema_name(operations: dict[str, Any]) -> str:
    body = operations.get("post", {}).get("requestBody", {})
    ref = body.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
    return str(ref).rsplit("/", 1)[-1] or "—"


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
    kind = prop.get("type", "object")
    if isinstance(kind, list):
        return " or ".join(kind)
    return str(kind)
