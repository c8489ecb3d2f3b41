"""docs/kinds/: one page per installed kind — its inputs, its answer, and which vendor answer becomes
which HTTP status — and docs/kinds/index.md listing them.

Nothing here is written by hand about a kind's behaviour: the inputs come from its input model's JSON
Schema, the answer and the error table from running vendor answers through the kind's own
`read_response` (and the gateway's retry and breaker rules over the errors it raises). The vendor
answers themselves are data (`tools/gendocs/samples.py`).

`installed_kinds()` is the one function that knows how the kind registry looks.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tools.gendocs.markdown import code, header, page, table
from tools.gendocs.samples import NOW, samples_for


@dataclass(frozen=True)
class KindDoc:
    """What the pages need of one kind."""

    kind: str
    protocol: str
    package: str  # the distribution that registered it
    input_model: Any  # a pydantic model class (gateway.providers.base.Inputs)
    options_model: Any  # a pydantic model class: the kind's own provider settings
    read_response: Callable[[Any, float], Any]  # (VendorResponse, now) -> Credential
    samples: Any  # the kind's documented answers (gateway.providers.kind.Sample)


def installed_kinds() -> list[KindDoc]:
    """The installed kinds, from the registry (the `auth_gateway.kinds` entry points)."""
    from gateway.providers.registry import installed_kinds as registry
    from gateway.settings import ProviderSettings

    docs = []
    for name, installed in registry().items():
        kind = installed.kind
        settings = ProviderSettings(
            kind=name,
            endpoint="https://vendor.example/",
            app_key="docs",
            app_secret="not-a-secret",  # noqa: S106 - the docs read answers, never sign
        )
        docs.append(
            KindDoc(
                kind=name,
                protocol=kind.protocol.name,
                package=installed.package,
                input_model=kind.input_model,
                options_model=kind.options_model,
                read_response=functools.partial(_read, kind, settings),
                samples=kind.samples,
            )
        )
    return docs


def _read(kind: Any, settings: Any, response: Any, now: float) -> Any:
    return kind.read_response(response, settings, now)


def slug(kind: str) -> str:
    """The page name of a kind: `top:yunos.aiot.x` -> `top-yunos-aiot-x`."""
    return re.sub(r"[^a-z0-9]+", "-", kind.lower()).strip("-")


def kind_pages(dev_providers: dict[str, str]) -> dict[str, str]:
    """docs-relative path -> page, for docs/kinds/. `dev_providers`: kind -> its dev-mode provider."""
    kinds = installed_kinds()
    pages = {"kinds/index.md": index_page(kinds, dev_providers)}
    for kind in kinds:
        pages[f"kinds/{slug(kind.kind)}.md"] = kind_page(kind, dev_providers.get(kind.kind))
    return pages


def index_page(kinds: list[KindDoc], dev_providers: dict[str, str]) -> str:
    lines = header(
        "Kinds",
        "the kind registry (gateway/providers/registry.py)",
        "A *kind* is one vendor call, `<protocol>:<vendor method>`. A provider in the configuration "
        "names its kind (`providers.<name>.kind`); several providers may share one (two brands, "
        "two app keys). These are the kinds installed with this gateway; `python -m gateway serve "
        "--dev` configures one provider of each against the sandbox, named as below. How to add "
        "one: [Plug-ins](../plugins.md).",
    )
    lines += table(
        ["kind", "protocol", "package", "inputs", "provider in dev mode"],
        (
            [
                f"[{code(k.kind)}]({slug(k.kind)}.md)",
                code(k.protocol),
                code(k.package),
                ", ".join(code(name) for name in input_properties(k.input_model)),
                code(dev_providers[k.kind]) if k.kind in dev_providers else "—",
            ]
            for k in kinds
        ),
    )
    return page(lines)


def input_properties(model: Any) -> dict[str, dict[str, Any]]:
    schema = model.model_json_schema(by_alias=True)
    properties: dict[str, dict[str, Any]] = schema.get("properties", {})
    return properties


def kind_page(kind: KindDoc, dev_provider: str | None) -> str:
    model = kind.input_model
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", []))
    identity = {
        (model.model_fields[name].alias or name) for name in getattr(model, "identity_fields", ())
    }
    intro = (model.__dict__.get("__doc__") or "").strip()  # its own, not a base class's
    lines = header(
        code(kind.kind),
        f"the kind registry: {model.__module__}.{model.__name__} and its read_response",
        f"Protocol `{kind.protocol}`, from the package `{kind.package}`."
        + (
            f" In `serve --dev` the provider `{dev_provider}` has this kind."
            if dev_provider
            else ""
        ),
    )
    if intro:
        lines += [" ".join(intro.split()), ""]
    lines += [
        "## Inputs",
        "",
        f"The JSON body of `POST /auth/<provider>` (and of `DELETE`), as the model "
        f"`{model.__name__}` validates it: unknown fields are refused, strings must be printable and "
        "not blank. The *identity* fields say whose credential it is: they make the cache key, and "
        "are normalised (invisible characters removed, NFKC, whitespace stripped) before the cache "
        "and the vendor see them.",
        "",
    ]
    lines += table(
        ["field", "type", "required", "identity", "limits"],
        (
            [
                code(name),
                json_type(prop),
                "yes" if name in required else "no",
                "yes" if name in identity else "no",
                limits(prop),
            ]
            for name, prop in schema.get("properties", {}).items()
        ),
    )
    lines += options_section(kind)
    lines += answer_section(kind)
    lines += errors_section(kind)
    return page(lines)


def options_section(kind: KindDoc) -> list[str]:
    """The kind's own provider settings, given beside the common ones."""
    properties = kind.options_model.model_json_schema().get("properties", {})
    if not properties:
        return []
    lines = [
        "## Provider options",
        "",
        "Settings of this kind only, given in the provider's entry beside `kind`, `endpoint` and "
        "the other [common settings](../reference/configuration.md).",
        "",
    ]
    return lines + table(
        ["key", "type", "default", "description"],
        (
            [
                code(name),
                json_type(prop),
                code(json.dumps(prop["default"])) if "default" in prop else "required",
                prop.get("description", ""),
            ]
            for name, prop in properties.items()
        ),
    )


def json_type(prop: dict[str, Any]) -> str:
    variants = prop.get("anyOf", [prop])
    names = [v.get("type", "any") for v in variants]
    shown = [name for name in names if name != "null"]
    text = " or ".join(shown) if shown else "any"
    return f"{text} or null" if "null" in names else text


def limits(prop: dict[str, Any]) -> str:
    found = []
    for variant in prop.get("anyOf", [prop]):
        if "maxLength" in variant:
            found.append(f"at most {variant['maxLength']} characters")
        if "exclusiveMinimum" in variant:
            found.append(f"> {variant['exclusiveMinimum']}")
        if "minimum" in variant:
            found.append(f"≥ {variant['minimum']}")
        if "maximum" in variant:
            found.append(f"≤ {variant['maximum']}")
    return ", ".join(found) or "—"


def answer_section(kind: KindDoc) -> list[str]:
    successes = [s for s in samples_for(kind) if s.success]
    if not successes:
        return []
    lines = [
        "## Answer",
        "",
        "A `200` with the normalized shape (the [HTTP API](../reference/http-api.md)); `token`, "
        "`expires_at` and `data` as this kind reads them from the vendor's answer:",
        "",
    ]
    for sample in successes:
        credential = kind.read_response(sample.response, NOW)
        expires = credential.expires_at
        if expires is None and credential.token is not None:
            expiry_note = "the answer carries no expiry: `expires_at` is now + `token_ttl_s`"
            expires_shown: Any = "<now + token_ttl_s>"
        else:
            expiry_note = "" if expires is not None else "no expiry: `expires_at` is null"
            expires_shown = None if expires is None else int(expires)
        body = {
            "provider": "<provider>",
            "kind": kind.kind,
            "token": credential.token,
            "expires_at": expires_shown,
            "cached": False,
            "data": credential.data,
            "upstream_request_id": credential.upstream_request_id,
        }
        cached = "cached" if credential.cacheable else "**not cached** (asked again next time)"
        notes = "; ".join(part for part in (expiry_note, cached) if part)
        lines += [
            f"{sample.description} ({notes}):",
            "",
            "```json",
            json.dumps(body, ensure_ascii=False, indent=2),
            "```",
            "",
        ]
    return lines


def errors_section(kind: KindDoc) -> list[str]:
    from gateway.catalogue import ERROR_CATALOGUE
    from gateway.errors import GatewayError
    from gateway.upstream import counts_against_vendor, is_retryable

    rows = []
    for sample in samples_for(kind):
        if sample.success:
            continue
        try:
            kind.read_response(sample.response, NOW)
        except GatewayError as error:
            rows.append(
                [
                    sample.description,
                    str(error.status),
                    code(error.code),
                    "yes" if is_retryable(error) else "no",
                    "yes" if counts_against_vendor(error) else "no",
                ]
            )
        else:  # a sample that reads as a credential is not an error sample: say so loudly
            raise AssertionError(f"{kind.kind}: {sample.description!r} did not fail")
    catalogue = {entry.code: entry for entry in ERROR_CATALOGUE}
    for code_name, what in (
        ("vendor_timeout", "no answer within `timeout_s` (or the request's `deadline_s`)"),
        ("vendor_unreachable", "connection refused or reset, DNS failure"),
    ):
        entry = catalogue[code_name]
        rows.append([what, str(entry.status), code(code_name), "yes", "yes"])
    return [
        "## Vendor errors",
        "",
        "What the caller gets for each vendor answer (the problem document's `upstream` carries "
        "the vendor's own `code`, `sub_code` and `message`). *Retried*: the gateway tries again "
        "within the retry budget and the deadline. *Breaker*: the attempt counts as the vendor "
        "failing, towards opening the provider's circuit breaker. See [Resilience](../resilience.md).",
        "",
        *table(["vendor answer", "status", "code", "retried", "breaker"], rows),
    ]
