"""DataFrames of calls: ``Ledger.calls`` (from ledger rows) and ``Scope.calls`` (from Call objects) have the
same columns."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .call import TOKEN_FIELDS, Call, from_pusd
from .columns import CALLS_TABLE, FRAME_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CALL_COLUMNS", "calls_frame", "rows_frame"]

CALL_COLUMNS = FRAME_COLUMNS
# frame column -> Call attribute, where they differ (cost_usd -> cost); tags are the Call's tags
_ATTRIBUTE = {c.frame: c.attribute for c in CALLS_TABLE if c.frame and c.attribute and c.frame != c.attribute}


def calls_frame(records: list[Call]) -> pd.DataFrame:
    """One row per call; ``cost_usd`` holds exact Decimals (None when unpriced), ``ts`` is UTC."""
    import pandas as pd

    data = {
        name: pd.Series([getattr(c, _ATTRIBUTE.get(name, name)) for c in records], dtype=object)
        for name in CALL_COLUMNS
    }
    frame = pd.DataFrame(data, columns=list(CALL_COLUMNS))
    for name in TOKEN_FIELDS:
        frame[name] = frame[name].astype("int64")
    frame["billed"] = frame["billed"].astype(bool)
    frame["streamed"] = frame["streamed"].astype(bool)
    frame["replayed"] = frame["replayed"].astype(bool)
    frame["latency_ms"] = frame["latency_ms"].astype("float64")
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    return frame


def rows_frame(rows: list[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    """The same frame from ledger rows (``calls.*`` plus the tag set's JSON as ``tags_json``)."""
    import pandas as pd

    frame = pd.DataFrame.from_records(rows, columns=columns)
    # money from the raw rows: pandas turns an integer column with a NULL into floats (NaN, and inexact
    # above 2**53 picodollars), which from_pusd would make Decimal('NaN') or a wrong Decimal
    for name in ("cost", "saved"):
        index = columns.index(f"{name}_pusd")
        frame[f"{name}_usd"] = pd.Series([from_pusd(r[index]) for r in rows], index=frame.index, dtype=object)
    frame["tags"] = pd.Series([json.loads(t) if isinstance(t, str) else {} for t in frame["tags_json"]],
                              index=frame.index, dtype=object)
    frame["usage_extra"] = pd.Series([json.loads(u) if isinstance(u, str) else None  # NaN: no usage_extra
                                      for u in frame["usage_extra"]], index=frame.index, dtype=object)
    frame["billed"] = frame["billed"].astype(bool)
    frame["streamed"] = frame["streamed"].astype(bool)
    frame["replayed"] = frame["replayed"].astype(bool)
    frame["latency_ms"] = frame["latency_ms"].astype("float64")
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    return frame[list(CALL_COLUMNS)]
