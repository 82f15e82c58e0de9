"""Readers for the providers' own usage and cost exports, normalized to one row per day × model × key.

Accepted (detected from the content; ``sample_data/exports/`` has one small file of each):

OpenAI
  * Costs API JSON (``GET /v1/organization/costs``): a page ``{"object": "page", "data": [bucket…]}`` or a
    list of pages; bucket ``start_time`` (unix s); result ``object: "organization.costs.result"``,
    ``amount.value`` (USD), ``amount.currency``, ``line_item`` (``"gpt-4.1-2025-04-14, input"``: the model is
    the part before the comma), ``project_id``, ``api_key_id``.
  * Usage API JSON (``GET /v1/organization/usage/completions``): result ``object:
    "organization.usage.completions.result"``, ``input_tokens`` (cached included), ``output_tokens``,
    ``input_cached_tokens``, ``num_model_requests``, ``model``, ``project_id``, ``api_key_id``.
  * Dashboard cost CSV (Usage → Export → Cost data): ``start_time`` (unix s) or ``start_time_iso``,
    ``amount_value``, ``amount_currency``, ``line_item``, ``project_id`` (and ``end_time``, ``project_name``,
    ``organization_id``, ``organization_name``, ignored).
  * Usage CSV (the completions usage flattened): ``start_time`` or ``start_time_iso``, ``model``,
    ``input_tokens``, ``output_tokens``, ``input_cached_tokens``, ``num_model_requests``, ``project_id``,
    ``api_key_id``.
Anthropic
  * Usage report JSON (``GET /v1/organizations/usage_report/messages``): ``{"data": [bucket…]}``, bucket
    ``starting_at`` (RFC 3339); result ``uncached_input_tokens``, ``cache_read_input_tokens``,
    ``cache_creation.ephemeral_5m_input_tokens`` + ``ephemeral_1h_input_tokens``, ``output_tokens``,
    ``model``, ``api_key_id``, ``workspace_id``. Input tokens = uncached + cache read + cache creation.
  * Cost report JSON (``GET /v1/organizations/cost_report``): result ``amount`` (a decimal string in cents),
    ``currency``, ``description``, ``model``, ``workspace_id``, ``cost_type``, ``token_type``.
Any provider
  * Generic CSV: ``date`` (YYYY-MM-DD), ``model``, ``cost_usd``; optional ``provider``, ``input_tokens``,
    ``output_tokens``, ``requests``, ``project_id``, ``api_key_id``, ``workspace_id``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..errors import ExportFormatError

__all__ = ["EXPORT_COLUMNS", "ExportFormatError", "read_export"]

# One normalized row: day, provider, model, key (project / API key / workspace ids), tokens, cost (USD, or
# None when the export has no cost) and the format it came from.
EXPORT_COLUMNS = (
    "day",
    "provider",
    "model",
    "project_id",
    "api_key_id",
    "workspace_id",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "requests",
    "cost_usd",
    "format",
)
_KEYS = ("project_id", "api_key_id", "workspace_id")


def _day_unix(value: Any) -> str:
    return datetime.fromtimestamp(int(float(value)), UTC).date().isoformat()


def _day_iso(value: str) -> str:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).date().isoformat()


def _dec(value: Any) -> Decimal:
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise ExportFormatError(f"not a number: {value!r}") from None


def _int(value: Any) -> int:
    return int(value) if value not in (None, "") else 0


def _row(
    fmt: str, provider: str, day: str, model: str | None, result: Mapping[str, Any], **values: Any
) -> dict:
    row = {
        "day": day,
        "provider": provider,
        "model": model or None,
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_read_tokens": 0,
        "requests": 0,
        "cost_usd": None,
        "format": fmt,
    }
    row.update({key: (result.get(key) or None) for key in _KEYS})
    row.update(values)
    return row


def _model_of_line_item(line_item: str | None) -> str | None:
    return line_item.split(",")[0].strip() if line_item else None


def _usd(amount: Decimal, currency: str | None) -> Decimal:
    if (currency or "usd").lower() != "usd":
        raise ExportFormatError(f"only USD exports can be reconciled, got currency {currency!r}")
    return amount


def _buckets(document: Any) -> Iterable[Mapping[str, Any]]:
    pages = document if isinstance(document, list) else [document]
    for page in pages:
        if not isinstance(page, Mapping) or not isinstance(page.get("data"), list):
            raise ExportFormatError("a JSON export must be a page {'data': [buckets]} or a list of pages")
        yield from page["data"]


def _from_json(document: Any) -> list[dict]:
    rows = []
    for bucket in _buckets(document):
        for result in bucket.get("results") or []:
            kind = result.get("object")
            if kind == "organization.costs.result":
                amount = result.get("amount") or {}
                rows.append(
                    _row(
                        "openai-costs",
                        "openai",
                        _day_unix(bucket["start_time"]),
                        _model_of_line_item(result.get("line_item")),
                        result,
                        cost_usd=_usd(_dec(amount.get("value", 0)), amount.get("currency")),
                    )
                )
            elif kind == "organization.usage.completions.result":
                rows.append(
                    _row(
                        "openai-usage",
                        "openai",
                        _day_unix(bucket["start_time"]),
                        result.get("model"),
                        result,
                        input_tokens=_int(result.get("input_tokens")),
                        output_tokens=_int(result.get("output_tokens")),
                        cache_read_tokens=_int(result.get("input_cached_tokens")),
                        requests=_int(result.get("num_model_requests")),
                    )
                )
            elif "uncached_input_tokens" in result:
                creation = result.get("cache_creation") or {}
                written = _int(creation.get("ephemeral_5m_input_tokens")) + _int(
                    creation.get("ephemeral_1h_input_tokens")
                )
                cache_read = _int(result.get("cache_read_input_tokens"))
                rows.append(
                    _row(
                        "anthropic-usage",
                        "anthropic",
                        _day_iso(bucket["starting_at"]),
                        result.get("model"),
                        result,
                        input_tokens=_int(result["uncached_input_tokens"]) + cache_read + written,
                        output_tokens=_int(result.get("output_tokens")),
                        cache_read_tokens=cache_read,
                    )
                )
            elif "amount" in result and "starting_at" in bucket:
                cents = _dec(result["amount"])
                rows.append(
                    _row(
                        "anthropic-cost",
                        "anthropic",
                        _day_iso(bucket["starting_at"]),
                        result.get("model"),
                        result,
                        cost_usd=_usd(cents / 100, result.get("currency")),
                    )
                )
            else:
                raise ExportFormatError(f"unknown result in the export: {sorted(result)[:8]}")
    return rows


def _csv_day(record: Mapping[str, str]) -> str:
    if record.get("start_time_iso"):
        return _day_iso(record["start_time_iso"])
    if record.get("start_time"):
        value = record["start_time"]
        return _day_unix(value) if value.replace(".", "").isdigit() else _day_iso(value)
    return _day_iso(record["date"])


def _from_csv(text: str) -> list[dict]:
    reader = csv.DictReader(io.StringIO(text))
    columns = set(reader.fieldnames or ())
    if "amount_value" in columns and "line_item" in columns:
        fmt = "openai-costs-csv"
    elif {"model", "input_tokens", "num_model_requests"} <= columns:
        fmt = "openai-usage-csv"
    elif {"date", "model", "cost_usd"} <= columns:
        fmt = "generic-csv"
    else:
        raise ExportFormatError(
            f"unknown CSV columns {sorted(columns)}; accepted: OpenAI cost CSV (start_time, amount_value, "
            "amount_currency, line_item, project_id), OpenAI usage CSV (start_time, model, input_tokens, "
            "output_tokens, input_cached_tokens, num_model_requests) or generic (date, model, cost_usd)"
        )
    rows = []
    for record in reader:
        day = _csv_day(record)
        if fmt == "openai-costs-csv":
            rows.append(
                _row(
                    fmt,
                    "openai",
                    day,
                    _model_of_line_item(record.get("line_item")),
                    record,
                    cost_usd=_usd(_dec(record["amount_value"] or 0), record.get("amount_currency")),
                )
            )
        elif fmt == "openai-usage-csv":
            rows.append(
                _row(
                    fmt,
                    "openai",
                    day,
                    record.get("model"),
                    record,
                    input_tokens=_int(record.get("input_tokens")),
                    output_tokens=_int(record.get("output_tokens")),
                    cache_read_tokens=_int(record.get("input_cached_tokens")),
                    requests=_int(record.get("num_model_requests")),
                )
            )
        else:
            rows.append(
                _row(
                    fmt,
                    record.get("provider") or None,
                    day,
                    record.get("model"),
                    record,
                    input_tokens=_int(record.get("input_tokens")),
                    output_tokens=_int(record.get("output_tokens")),
                    requests=_int(record.get("requests")),
                    cost_usd=_dec(record["cost_usd"]),
                )
            )
    return rows


def read_export(source: str | Path | Mapping[str, Any] | list[Any]) -> list[dict]:
    """Normalized rows (see ``EXPORT_COLUMNS``) of a provider export: a path, or already-parsed JSON."""
    if isinstance(source, Mapping | list):
        return _from_json(source)
    path = Path(source).expanduser()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ExportFormatError(f"cannot read the export {path}: {exc.strerror}") from None
    if text.lstrip().startswith(("{", "[")):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ExportFormatError(f"{path} is not valid JSON: {exc}") from None
        return _from_json(document)
    return _from_csv(text)
