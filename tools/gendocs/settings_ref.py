"""docs/reference/configuration.md: every setting of the pydantic models, nested ones included.

The models are walked from `gateway.settings.Settings` down through every field whose type holds a
pydantic model (directly, in a `dict[str, …]` or a list, or in a union of several models), so a
model added under it appears here without this module naming it. For each setting: the key as it
is written in the YAML file, its type and constraints, its default, its environment variable
(`GATEWAY_` prefix, `__` between levels, `<NAME>` for a map's key) and its description (the docstring
under the field: the models set `use_attribute_docstrings`), on one line.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from tools.gendocs.markdown import code, header, json_value, page, table

NO_DESCRIPTION = "(no description)"


@dataclass(frozen=True)
class Section:
    """One model as it appears in the file: where (`providers.<name>.retry`) and which model."""

    path: str
    env: str
    model: type[BaseModel]
    title: str


@dataclass(frozen=True)
class Setting:
    key: str
    type: str
    default: str
    env: str
    description: str


def settings_root() -> type[BaseModel]:
    from gateway.settings import Settings

    return Settings


def env_prefix(model: type[BaseModel]) -> str:
    prefix = model.model_config.get("env_prefix", "")
    return str(prefix).upper()


def sections(root: type[BaseModel]) -> list[Section]:
    """The root model and every model reachable from its fields, in the order a reader meets them."""
    found: list[Section] = []

    def visit(section: Section) -> None:
        found.append(section)
        for name, field in section.model.model_fields.items():
            for model, key_part in nested_models(field.annotation):
                path = f"{section.path}.{name}{key_part}" if section.path else f"{name}{key_part}"
                env = env_name(section, name) + ("__<NAME>" if key_part else "")
                several = len(nested_models(field.annotation)) > 1
                title = f"{path} ({model.__name__})" if several else path
                visit(Section(path, env, model, title))

    visit(Section("", env_prefix(root), root, "Top level"))
    return found


def env_name(section: Section, name: str) -> str:
    """The variable of field `name` of `section`: the prefix at the top, then `__` between levels."""
    return f"{section.env}{'__' if section.path else ''}{name.upper()}"


def nested_models(annotation: Any) -> list[tuple[type[BaseModel], str]]:
    """The pydantic models a field's type holds, each with how its key continues (`.<name>`, `[]`)."""
    found: list[tuple[type[BaseModel], str]] = []

    def visit(tp: Any, suffix: str) -> None:
        origin = get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            found.append((tp, suffix))
        elif origin is Annotated:
            visit(get_args(tp)[0], suffix)
        elif origin in (Union, types.UnionType):
            for arg in get_args(tp):
                visit(arg, suffix)
        elif origin is dict:
            visit(get_args(tp)[1], suffix + ".<name>")
        elif origin in (list, tuple, set, frozenset):
            for arg in get_args(tp):
                if arg is not Ellipsis:
                    visit(arg, suffix + "[]")

    visit(annotation, "")
    return found


def describe_type(annotation: Any, metadata: list[Any]) -> str:
    """A type as a reader of the YAML file thinks of it, with its constraints."""
    text = _type_name(annotation)
    rules = [rule for item in metadata if (rule := _constraint(item))]
    return f"{text} ({', '.join(rules)})" if rules else text


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Annotated:
        inner, *extra = get_args(tp)
        found = [rule for item in extra for rule in _constraints_of(item)]
        name = _type_name(inner)
        return f"{name} ({', '.join(found)})" if found else name
    if origin in (Union, types.UnionType):
        args = [arg for arg in get_args(tp) if arg is not type(None)]
        names = " or ".join(_type_name(arg) for arg in args)
        return f"{names} or null" if len(args) < len(get_args(tp)) else names
    if origin is Literal:
        return "one of " + ", ".join(code(str(value)) for value in get_args(tp))
    if origin is dict:
        return f"map of name to {_type_name(get_args(tp)[1])}"
    if origin in (list, tuple, set, frozenset):
        return f"list of {_type_name(get_args(tp)[0])}"
    if tp is SecretStr:
        return "secret string"
    if tp is Path:
        return "file path"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return f"{tp.__name__} (below)"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(tp, str(tp))


def _constraints_of(item: Any) -> list[str]:
    if isinstance(item, FieldInfo):
        return [rule for sub in item.metadata if (rule := _constraint(sub))]
    rule = _constraint(item)
    return [rule] if rule else []


def _constraint(item: Any) -> str | None:
    if isinstance(item, Ge):
        return f"≥ {item.ge}"
    if isinstance(item, Gt):
        return f"> {item.gt}"
    if isinstance(item, Le):
        return f"≤ {item.le}"
    if isinstance(item, Lt):
        return f"< {item.lt}"
    if isinstance(item, MinLen):
        return f"at least {item.min_length} long"
    if isinstance(item, MaxLen):
        return f"at most {item.max_length} long"
    pattern = getattr(item, "pattern", None)
    if isinstance(pattern, str):
        return f"pattern {code(pattern)}"
    return None


def describe_default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        factory: Any = field.default_factory
        made = factory()
        return code(json_value(made)) if isinstance(made, list | dict) else "(computed)"
    if field.default is PydanticUndefined:
        return "**required**"
    if isinstance(field.default, BaseModel):
        return "(see below)"
    if isinstance(field.default, SecretStr | Path):
        return code(str(field.default))
    return code(json_value(field.default))


def settings_of(section: Section) -> Iterator[Setting]:
    for name, field in section.model.model_fields.items():
        key = f"{section.path}.{name}" if section.path else name
        yield Setting(
            key=key,
            type=describe_type(field.annotation, field.metadata),
            default=describe_default(field),
            env=env_name(section, name),
            description=" ".join((field.description or "").split()) or NO_DESCRIPTION,
        )


def undocumented(root: type[BaseModel] | None = None) -> list[str]:
    """Keys whose field has no description (each should have one: this page is where it shows)."""
    return [
        s.key
        for section in sections(root or settings_root())
        for s in settings_of(section)
        if s.description == NO_DESCRIPTION
    ]


def configuration_page() -> str:
    root = settings_root()
    lines = header(
        "Configuration reference",
        "the pydantic models of gateway/settings/",
        "Settings come from a YAML file (`--config PATH` or `GATEWAY_CONFIG`) and from environment "
        "variables, which win over the file. A variable is `GATEWAY_` and the key's path in capitals, "
        "with `__` between levels; `<NAME>` stands for a provider's or a client's name (e.g. "
        "`GATEWAY_PROVIDERS__TENCENT_WECHAT__APP_SECRET`: a `-` in a provider's name may be written "
        "`_`, which a shell can export). Lists are YAML lists in the file "
        "(JSON in a variable, except where a setting says otherwise). `python -m gateway "
        "check-config FILE` validates a file offline; a bad file fails start-up naming each key at "
        "fault. See [Getting started](../getting-started.md) for a first file.",
    )
    for section in sections(root):
        lines += [f"## {section.title}", ""]
        doc = (section.model.__doc__ or "").strip()
        if doc:
            lines += [" ".join(doc.split()), ""]
        lines += table(
            ["key", "type", "default", "environment variable", "description"],
            (
                [code(s.key), s.type, s.default, code(s.env), s.description]
                for s in settings_of(section)
            ),
        )
    return page(lines)
