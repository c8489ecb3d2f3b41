"""docs/reference/errors.md (from gateway/catalogue.py and the exception tree of gateway/errors.py)
and docs/reference/metrics.md (from the registry of gateway/metrics/ and the label values it makes at start)."""

from __future__ import annotations

from typing import Any

from tools.gendocs.markdown import code, header, page, table


def errors_page() -> str:
    from gateway import catalogue, errors

    lines = header(
        "Error catalogue",
        "gateway/catalogue.py (ERROR_CATALOGUE) and gateway/errors.py (the exception tree)",
        "Every error is an RFC 9457 `application/problem+json` document: `type` "
        "(`urn:auth-gateway:problem:<code>`), `title`, `status`, `detail`, and `code` (one of the "
        "stable codes below), `provider`, `retryable`, `upstream` (the vendor's `code`, `sub_code` "
        "and `message`, redacted and cut) and `request_id`. A 400 `invalid_input` also carries "
        "`errors`, one `{field, message}` per invalid field; 429 and 503 answers carry `Retry-After`. "
        "Which vendor answer becomes which code is on each [kind's page](../kinds/index.md).",
    )
    lines += table(
        ["status", "code", "when", "retryable"],
        (
            [str(e.status), code(e.code), e.when, "yes" if e.retryable else "no"]
            for e in catalogue.ERROR_CATALOGUE
        ),
    )
    tree = (errors.__doc__ or "").strip().split("\n\n")
    lines += [
        "## The exception tree",
        "",
        "Each error class knows its status and default code (from the docstring of "
        "`gateway/errors.py`):",
        "",
        "```text",
        *tree[1].splitlines(),
        "```",
        "",
        *(" ".join(part.split()) + "\n" for part in tree[2:]),
    ]
    return page(lines)


def metrics_page() -> str:
    from gateway import metrics

    registry_of = metrics.Metrics()
    known = known_label_values(metrics)
    rows = []
    for family in sorted(exposed_families(registry_of), key=lambda f: f["name"]):
        values = [
            f"{code(label)}: " + ", ".join(code(v) for v in known[(family["name"], label)])
            for label in family["labels"]
            if (family["name"], label) in known
        ]
        rows.append(
            [
                code(family["name"]),
                family["type"],
                ", ".join(code(label) for label in family["labels"]) or "—",
                family["help"] + (" Values: " + "; ".join(values) + "." if values else ""),
            ]
        )
    lines = header(
        "Metrics reference",
        "the registry of gateway/metrics/",
        "`GET /metrics` (and `metrics_port`, when set) in the Prometheus text format. Every name has "
        "the `gateway_` prefix and base units. Labels are bounded: `provider` takes only configured "
        "names, the other labels only the values listed; every labelled series below exists at 0 "
        "from start-up for every configured provider (`Metrics.initialise`), so a panel reads 0 "
        "where nothing has happened yet. Under `serve --workers N` the workers' values are summed "
        "(gauges as noted). Prometheus adds `namespace`, `job`, `pod` and `instance` when it scrapes. "
        "The dashboard and the alerts that read these are described in "
        "[Operations](../operations.md).",
    )
    lines += table(["name", "type", "labels", "meaning"], rows)
    lines += [
        f"Histogram buckets (seconds) for latencies: {', '.join(str(b) for b in metrics.LATENCY_BUCKETS)}.",
        "",
    ]
    return page(lines)


def known_label_values(metrics: Any) -> dict[tuple[str, str], list[str]]:
    """(family, label) -> the values gateway/metrics/families.py names for it."""
    return {
        ("gateway_requests_total", "outcome"): list(metrics.REQUEST_OUTCOMES),
        ("gateway_requests_total", "status_class"): sorted(set(metrics.REQUEST_OUTCOMES.values())),
        ("gateway_vendor_calls_total", "outcome"): list(metrics.VENDOR_CALL_OUTCOMES),
        ("gateway_cache_lookups_total", "result"): list(metrics.CACHE_RESULTS),
        ("gateway_vendor_retries_denied_total", "reason"): list(metrics.RETRY_DENIAL_REASONS),
        ("gateway_store_errors_total", "operation"): list(metrics.STORE_OPERATIONS),
        ("gateway_store_errors_total", "reason"): list(metrics.STORE_ERROR_REASONS),
        ("gateway_http_connections_rejected_total", "reason"): list(metrics.HTTP_REJECTION_REASONS),
        **{
            (family, "listener"): list(metrics.HTTP_LISTENERS)
            for family in (
                "gateway_http_connections",
                "gateway_http_connections_rejected_total",
                "gateway_http_parser_errors_total",
            )
        },
    }


def exposed_families(metrics: Any) -> list[dict[str, Any]]:
    """Name (as exposed), type, label names and help of each family the gateway exposes."""
    found = []
    for registry in {id(r): r for r in (metrics.registry, metrics.exposed)}.values():
        for collector in list(registry._collector_to_names):  # no public listing
            for family in collector.describe():
                name = family.name
                if family.type == "counter":
                    name += "_total"
                elif family.type == "info":
                    name += "_info"
                labels = list(getattr(collector, "_labelnames", ()))
                if family.type == "info":
                    labels = ["version"]
                found.append(
                    {
                        "name": name,
                        "type": family.type,
                        "labels": labels,
                        "help": family.documentation,
                    }
                )
    return found
