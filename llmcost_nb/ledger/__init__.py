"""The SQLite ledger: open, migrations, write, read, tags, rollups, the journal, check."""

from .sqlite import SCHEMA_VERSION, Ledger, LedgerError, default_path

__all__ = ["SCHEMA_VERSION", "Ledger", "LedgerError", "default_path"]
