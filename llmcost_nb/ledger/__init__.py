"""The SQLite ledger: open, migrations, write, read, tags, rollups, the journal, check; the read protocol
(:class:`LedgerReader`) that the team ledger implements too."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .protocol import LedgerReader, register_backend, register_reports
from .query import DIMENSIONS, DISTINCT_COLUMNS, Query, check_column, dim_name, normalize_by
from .sqlite import SCHEMA_VERSION, Ledger, LedgerError, default_path, open_ledger

if TYPE_CHECKING:
    from .integrity import CheckReport

SqliteLedger = Ledger


def check(target: Ledger | str | os.PathLike[str], *, reprice: bool = True) -> CheckReport:
    """Check a ledger (a :class:`Ledger` or a path) and say what is wrong in words (``llmcost check``).

    >>> check("costs.db").problems               # doctest: +SKIP
    ['3 of 120 priced rows differ from re-pricing (ids 4, 7, 9: ...); run Ledger(...).reprice(all=True)']
    """
    from .integrity import check_file  # on first use: %load_ext never checks a ledger

    return check_file(target, open_ledger=Ledger, reprice=reprice)


def __getattr__(name: str) -> Any:
    if name == "CheckReport":
        from .integrity import CheckReport

        return CheckReport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "DIMENSIONS",
    "DISTINCT_COLUMNS",
    "SCHEMA_VERSION",
    "CheckReport",
    "Ledger",
    "LedgerError",
    "LedgerReader",
    "Query",
    "SqliteLedger",
    "check",
    "check_column",
    "default_path",
    "dim_name",
    "normalize_by",
    "open_ledger",
    "register_backend",
    "register_reports",
]
