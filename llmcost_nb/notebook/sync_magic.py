"""``%llmcost sync``: push the session's ledger to the team ledger now, or every N seconds in the background.

    %llmcost sync --to postgresql://me@db.internal/team             # once, now
    %llmcost sync --to postgresql://me@db.internal/team --every 60  # background thread, never blocks a cell
    %llmcost sync --status                                           # the background sync's state
    %llmcost sync --stop

The background job belongs to the session (one per kernel); ``--to`` defaults to ``$LLMCOST_SYNC_DSN``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

__all__ = ["sync_magic"]

DESCRIPTION = "Push the ledger to the PostgreSQL team ledger, once or every N seconds in the background."


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # a UsageError (one line in Jupyter), not SystemExit
        from IPython.core.error import UsageError

        raise UsageError(f"{self.prog}: {message}")


def _parser() -> _Parser:
    parser = _Parser(prog="%llmcost sync", description=DESCRIPTION, add_help=False)
    parser.add_argument(
        "--to",
        dest="dsn",
        default=None,
        metavar="postgresql://…",
        help="the team ledger (default: $LLMCOST_SYNC_DSN)",
    )
    parser.add_argument(
        "--every",
        type=float,
        default=None,
        metavar="SECONDS",
        help="keep syncing every SECONDS on a background thread",
    )
    parser.add_argument("--stop", action="store_true", help="stop the background sync")
    parser.add_argument("--status", action="store_true", help="show the background sync's state")
    parser.add_argument("--schema", default="llmcost", help="PostgreSQL schema (default: llmcost)")
    return parser


def sync_magic(words: list[str]) -> Any:
    """Run ``%llmcost sync`` with its words (after ``sync``); returns what the cell shows."""
    from IPython.core.error import UsageError

    from ..team.background import BackgroundSync
    from ..team.sync import SyncError, sync
    from ..tracking.scope import get_session

    parser = _parser()
    if "-h" in words or "--help" in words:
        print(parser.format_help())  # help is what the user asked to see, like every %llmcost subcommand
        return None
    ns = parser.parse_args(words)
    session = get_session()
    job: BackgroundSync | None = getattr(session, "_sync_job", None)
    if ns.stop or ns.status:
        if job is None:
            return "no background sync is running"
        if ns.stop:
            job.stop()
            session._sync_job = None  # type: ignore[attr-defined]
        return job
    dsn = ns.dsn or os.environ.get("LLMCOST_SYNC_DSN")
    if not dsn:
        raise UsageError("%llmcost sync: pass --to postgresql://user@host/db or set $LLMCOST_SYNC_DSN")
    try:
        if ns.every is None:
            return sync(dsn, ledger=session.ledger, schema=ns.schema)
        if ns.every <= 0:
            raise UsageError(f"%llmcost sync: --every must be a positive number of seconds, got {ns.every:g}")
        if job is not None:
            job.stop(timeout=0)
        session._sync_job = BackgroundSync(  # type: ignore[attr-defined]
            dsn, every=ns.every, ledger=session.ledger, schema=ns.schema
        ).start()
        return session._sync_job  # type: ignore[attr-defined]
    except (SyncError, ValueError) as exc:
        raise UsageError(f"%llmcost sync: {exc}") from None
