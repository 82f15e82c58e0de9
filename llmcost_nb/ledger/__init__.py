"""The SQLite ledger: open, migrations, write, read, tags, rollups, the journal, check; the read protocol
(:class:`LedgerReader`) that the team ledger implements too."""

from .protocol import LedgerReader, register_backend, register_reports
from .query import DIMENSIONS, DISTINCT_COLUMNS, Query, check_column, dim_name, normalize_by
from .sqlite import SCHEMA_VERSION, Ledger, LedgerError, default_path, open_ledger

SqliteLedger = Ledger

__all__ = [
    "DIMENSIONS",
    "DISTINCT_COLUMNS",
    "SCHEMA_VERSION",
    "Ledger",
    "LedgerError",
    "LedgerReader",
    "Query",
    "SqliteLedger",
    "check_column",
    "default_path",
    "dim_name",
    "normalize_by",
    "open_ledger",
    "register_backend",
    "register_reports",
]
