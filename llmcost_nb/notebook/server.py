"""The jupyter_server extension behind the JupyterLab status-bar meter and side panel.

``GET {base_url}llmcost/api/summary`` (behind Jupyter's auth, read-only) answers with what the ledger says
now: today's and this month's calls and cost (calendar days and months in UTC, as budgets count them),
today's spend by model, the budgets stored in the ledger with what each has spent, the last calls, and
the spend of each open notebook's kernel. Money is exact decimal text (``"0.000042"``). Everything comes
from the ledger's public read API: the rollups answer today and this month, so the answer stays cheap on
a big ledger (``benchmarks/bench_server.py``).

Which ledger: ``c.LlmcostExtension.ledger`` (a path) if set, else ``$LLMCOST_DB``, else the default
(:func:`llmcost_nb.ledger.default_path`) — the one a kernel records to when nothing says otherwise. A
ledger that does not exist yet is not created: the answer says ``"exists": false``.

How an open notebook is matched to its calls: jupyter_server starts a notebook's kernel with
``JPY_SESSION_NAME`` = the notebook's absolute path (ipykernel shows it as ``__session__``), and each
tracked cell (``%%llmcost``, or every cell after ``%llmcost on``) stores a scope row with that path
and the kernel's tracking session id. For each open session of the server (its session manager: notebook
path ↔ kernel id) the answer takes the tracking sessions whose cells were recorded under that notebook's
path; the latest one is the kernel's current session, and its spend is that of its tracked cells, read
from the ledger's notebook rollup (so it stays cheap however long the kernel runs). Not counted there: calls
of untracked cells (``%llmcost on`` tracks every cell), a kernel that has run no tracked cell yet (``$0``
until it does), a notebook renamed since its kernel started (the kernel still reports the old path). All
of them count in today's, this month's and the budgets' figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

from traitlets import Int, Unicode
from traitlets.config import Configurable

__all__ = ["API_PATH", "LlmcostExtension", "load_jupyter_server_extension", "summary"]

API_PATH = "llmcost/api/summary"
NAME = "llmcost_nb.notebook.server"


def _money(value: Decimal | None) -> str | None:
    """Exact decimal text, without an exponent (``Decimal('1E-7')`` reads ``0.0000001``)."""
    return None if value is None else f"{value:f}"


def _pusd(pusd: int | None) -> str | None:
    from ..core.money import from_pusd

    return _money(from_pusd(pusd))


def _totals(rows: list[tuple[Any, ...]], groups: int) -> dict[str, Any]:
    """The protocol's aggregate rows summed: calls, errors, tokens, exact cost, unpriced and estimated
    calls."""
    calls = sum(r[groups] for r in rows)
    pusd = sum(r[groups + 7] for r in rows)
    return {
        "calls": calls,
        "errors": sum(r[groups + 1] for r in rows),
        "input_tokens": sum(r[groups + 2] for r in rows),
        "output_tokens": sum(r[groups + 3] for r in rows),
        "cost": _pusd(pusd),
        "unpriced": sum(r[groups + 8] for r in rows),
        "estimated": sum(r[groups + 9] for r in rows),
    }


def _fraction(spent: Decimal, limit: Decimal) -> str | None:
    """The spent share of a limit, rounded down to 4 decimals (so 80% shows only once reached)."""
    return None if not limit else _money((spent / limit).quantize(Decimal("0.0001"), rounding=ROUND_FLOOR))


def summary(ledger: Any, notebooks: Iterable[Mapping[str, Any]] = (), *, now: datetime | None = None,
            last_calls: int = 20) -> dict[str, Any]:
    """What ``GET llmcost/api/summary`` answers for an open ledger, as a JSON-ready dict.

    ``notebooks``: the server's open sessions (each ``{"path", "kernel_id", "paths"}``); ``now`` (UTC) says
    which day and month are "today" and "this month" (the benchmark's ledger ends in the past).

    >>> summary(Ledger("costs.db"))["today"]["cost"]      # doctest: +SKIP
    '0.004215'
    """
    from .. import budget as budgets_api
    from ..ledger import Query

    now = now or datetime.now(UTC)
    day = now.strftime("%Y-%m-%d")
    month = now.strftime("%Y-%m")
    tomorrow = (now + timedelta(days=1)).strftime("%Y-%m-%d")
    by_model = ledger.aggregate(Query.parse(("provider", "model"), since=day, until=tomorrow))
    month_rows = ledger.aggregate(Query.parse((), since=f"{month}-01", until=tomorrow))
    today = {"day": day, **_totals(by_model, 2)}
    today["by_model"] = [
        {"provider": r[0], "model": r[1], **_totals([r], 2)}
        for r in sorted(by_model, key=lambda r: (-r[2 + 7], r[1] or ""))
    ]
    today_spent = (sum(r[2 + 7] for r in by_model), sum(r[2 + 8] for r in by_model))
    month_spent = (sum(r[7] for r in month_rows), sum(r[8] for r in month_rows))

    open_nbs = list(notebooks)
    sessions = ledger.notebook_sessions({p for nb in open_nbs for p in nb.get("paths", ())})
    by_path: dict[str, list[tuple[Any, ...]]] = {}
    for row in sessions:
        by_path.setdefault(row[0], []).append(row)

    budgets_api.refresh(ledger)  # another process may have set one since the last request
    stored = budgets_api.budgets(ledger)

    from ..core.money import from_pusd

    known: dict[str, tuple[int, int]] = {}  # tag and notebook budgets: read once per answer

    def spent_on(scope: str, session: tuple[int, int] | None) -> tuple[int, int] | None:
        """Picodollars spent against a budget's scope, and the unpriced calls that leaves out (``session``:
        those of the notebook's kernel, for a session budget)."""
        kind = scope.split(":", 1)[0]
        if scope in known:
            return known[scope]
        if kind == "day":
            return today_spent
        if kind == "month":
            return month_spent
        if kind == "tag":
            key, _, value = scope[4:].partition("=")
            rows = ledger.aggregate(Query.parse((), where={f"tag:{key}": value}))
            known[scope] = (sum(r[7] for r in rows), sum(r[8] for r in rows))
            return known[scope]
        if kind == "notebook":
            found = ledger.notebook_sessions([scope[9:]])
            known[scope] = (sum(r[3] for r in found), sum(r[6] for r in found))
            return known[scope]
        if kind == "session":
            return session  # None outside a notebook: each kernel has its own
        return None

    def budget_entry(b: Any, session: tuple[int, int] | None) -> dict[str, Any]:
        found = spent_on(b.scope, session)
        spent = None if found is None else from_pusd(found[0])
        return {
            "scope": b.scope, "limit": _money(b.limit), "hard": b.hard, "spent": _money(spent),
            "fraction": None if spent is None else _fraction(spent, b.limit),
            "unpriced": None if found is None else found[1],
        }

    budget_list = [budget_entry(b, None) for b in stored]

    notebook_list = []
    for nb in open_nbs:
        rows = [r for p in nb.get("paths", ()) for r in by_path.get(p, [])]
        rows.sort(key=lambda r: r[5])
        entry: dict[str, Any] = {
            "path": nb["path"], "kernel_id": nb.get("kernel_id"),
            "notebook_calls": sum(r[2] for r in rows), "notebook_cost": _pusd(sum(r[3] for r in rows)),
            "notebook_unpriced": sum(r[6] for r in rows), "notebook_estimated": sum(r[7] for r in rows),
            "session_id": None, "calls": 0, "cost": "0", "unpriced": 0, "estimated": 0, "since": None,
            "last_calls": [],
        }
        session_spent = None  # the kernel's session: picodollars, unpriced calls
        if rows:
            session = max(rows, key=lambda r: r[5])[1]  # the latest: the kernel's current session
            mine = [r for r in rows if r[1] == session]
            first, last = min(r[4] for r in mine), max(r[5] for r in mine)
            # its latest day up to its last call: bounds the read on the timestamp index to that window,
            # however long ago the session last ran and however busy the ledger has been since
            recent = max(first, last[:10])
            after_last = datetime.fromisoformat(last) + timedelta(microseconds=1)
            calls = ledger.latest_calls(last_calls, session_id=session, since=recent, until=after_last,
                                        tracked=True)
            session_spent = (sum(r[3] for r in mine), sum(r[6] for r in mine))
            entry.update(session_id=session, since=first, calls=sum(r[2] for r in mine),
                         cost=_pusd(session_spent[0]), unpriced=session_spent[1],
                         estimated=sum(r[7] for r in mine), last_calls=[_call(c) for c in calls])
        entry["budgets"] = [
            budget_entry(b, session_spent)
            for b in stored
            if not (b.kind == "notebook" and b.scope[9:] not in nb.get("paths", ()))
        ]
        entry["tightest_budget"] = _tightest(entry["budgets"])
        notebook_list.append(entry)

    return {
        "ledger": str(ledger.path),
        "exists": True,
        "now": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "currency": "USD",
        "today": today,
        "month": {"month": month, **_totals(month_rows, 0)},
        "budgets": budget_list,
        "tightest_budget": _tightest(budget_list),
        "notebooks": notebook_list,
        "last_calls": [_call(c) for c in ledger.latest_calls(last_calls)],
    }


def _tightest(budgets: list[dict[str, Any]]) -> dict[str, str] | None:
    """The budget with the largest spent share (the first of equals), or ``None``."""
    shares = [(Decimal(b["fraction"]), -i, b["scope"]) for i, b in enumerate(budgets) if b["fraction"]]
    if not shares:
        return None
    fraction, _, scope = max(shares)
    return {"scope": scope, "fraction": _money(fraction)}


def _call(call: dict[str, Any]) -> dict[str, Any]:
    return {**call, "cost": _money(call["cost"])}


def kernel_paths(path: str, name: str | None, root_dir: str, cwd_for_path: Any) -> list[str]:
    """The absolute paths a notebook's kernel may have been told (``JPY_SESSION_NAME``): jupyter_server
    gives ``cwd_for_path(path) / name``; the notebook's own path on disk is the other candidate."""
    found = [os.path.join(root_dir, *path.split("/"))]
    if name:
        found.insert(0, os.path.join(cwd_for_path(path), name))
    return list(dict.fromkeys(found))


# -- the server side --------------------------------------------------------------------------------------
class LlmcostExtension(Configurable):
    """Settings of the JupyterLab meter's server side (``jupyter_server_config.py``):
    ``c.LlmcostExtension.ledger = "/path/to/ledger.db"``."""

    ledger = Unicode("", help="The ledger to show: a path. Empty: $LLMCOST_DB, else the default ledger "
                              "(~/.local/share/llmcost_nb/ledger.db).").tag(config=True)
    last_calls = Int(20, help="How many of the last calls the summary lists.").tag(config=True)

    def ledger_path(self) -> Path:
        from ..ledger import default_path

        return Path(self.ledger).expanduser() if self.ledger else default_path()


class _Reader:
    """One open ledger for the server's requests (opened when it exists, reopened when the path changes),
    read from one worker thread at a time so the event loop never waits on SQLite. An answer is kept until
    another process commits to the ledger, the day changes or the open notebooks do: a poll that finds
    nothing new costs one PRAGMA (``benchmarks/bench_server.py``)."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.ledger: Any = None
        self.kept: tuple[Any, dict[str, Any]] | None = None

    def read(self, notebooks: list[dict[str, Any]], now: datetime | None = None) -> dict[str, Any]:
        path = self.config.ledger_path()
        now = now or datetime.now(UTC)
        with self.lock:
            if not path.exists():
                self.kept = None
                return {"ledger": str(path), "exists": False, "currency": "USD"}
            if self.ledger is None or self.ledger.path != path:
                from ..ledger import Ledger

                self.ledger, self.kept = Ledger(path), None
            key = (str(path), self.ledger.data_version(), now.strftime("%Y-%m-%d"),
                   json.dumps(notebooks, sort_keys=True), self.config.last_calls)
            if self.kept is None or self.kept[0] != key:
                self.kept = (key, summary(self.ledger, notebooks, now=now, last_calls=self.config.last_calls))
            return {**self.kept[1], "now": now.strftime("%Y-%m-%dT%H:%M:%SZ")}


def _handler_class() -> type:
    from jupyter_server.base.handlers import APIHandler
    from tornado import web

    class SummaryHandler(APIHandler):
        """``GET {base_url}llmcost/api/summary``: the summary as JSON (see :func:`summary`)."""

        def initialize(self, reader: _Reader) -> None:
            self.reader = reader

        async def open_notebooks(self) -> list[dict[str, Any]]:
            """The server's open notebook sessions that have a kernel."""
            found = []
            kernels = self.kernel_manager
            for session in await self.session_manager.list_sessions():
                if session.get("type") not in (None, "notebook") or not session.get("kernel"):
                    continue
                paths = kernel_paths(session["path"], session.get("name"), kernels.root_dir,
                                     kernels.cwd_for_path)
                found.append(dict(path=session["path"], kernel_id=session["kernel"]["id"], paths=paths))
            return found

        @web.authenticated
        async def get(self) -> None:
            try:
                notebooks = await self.open_notebooks()
            except Exception as exc:  # e.g. jupyter_server's model of a kernel still starting: next time
                self.log.debug("llmcost_nb: open sessions unavailable (%s)", exc)
                notebooks = []
            loop = asyncio.get_running_loop()
            try:
                answer = await loop.run_in_executor(None, self.reader.read, notebooks)
            except Exception as exc:  # a broken ledger: say so in the meter, never a 500 page
                from ..errors import LlmcostError

                if not isinstance(exc, LlmcostError | OSError):
                    raise
                answer = {"ledger": str(self.reader.config.ledger_path()), "exists": True, "error": str(exc),
                          "currency": "USD"}
            self.set_header("Cache-Control", "no-store")
            self.finish(answer)

    return SummaryHandler


def load_jupyter_server_extension(serverapp: Any) -> None:
    """Add the handler under the server's base URL (jupyter_server calls this once at start)."""
    from jupyter_server.utils import url_path_join

    config = LlmcostExtension(parent=serverapp)
    reader = _Reader(config)
    route = url_path_join(serverapp.web_app.settings["base_url"], API_PATH)
    serverapp.web_app.add_handlers(".*$", [(route, _handler_class(), {"reader": reader})])
    serverapp.log.info("llmcost_nb: %s serves the ledger at %s", route, config.ledger_path())


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": NAME}]


_load_jupyter_server_extension = load_jupyter_server_extension
