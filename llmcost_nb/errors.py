"""Every exception llmcost_nb raises on purpose, and its one warning class.

Our exception hierarchy::

    LlmcostError
    ├── LedgerError
    │   └── FilterError (+ TypeError)
    ├── PricingError
    │   ├── UnknownModel (+ LookupError)
    │   └── UsageError (+ ValueError)
    ├── AnalysisError (+ ValueError)
    ├── BudgetError
    │   └── BudgetExceeded (built on first use; + openai.OpenAIError, anthropic.AnthropicError)
    ├── RecordingError
    │   └── ReplayMiss (the raised instances: + openai.OpenAIError, anthropic.AnthropicError)
    ├── ExperimentError
    │   └── GridOverBudget
    ├── TeamError
    │   ├── SyncError
    │   ├── AccessError
    │   │   ├── NotAdmin
    │   │   ├── NotAMember
    │   │   └── LedgerNotYours
    │   └── ExportFormatError (+ ValueError)
    └── DemoFailed (+ RuntimeError)

    LlmcostWarning (UserWarning)

``except llmcost_nb.LlmcostError`` catches any of them; the builtin base in brackets keeps older
``except ValueError`` (etc.) working. ``BudgetExceeded`` and the raised ``ReplayMiss`` subclass the openai and
anthropic base errors (where installed) so the SDKs pass them through instead of retrying and wrapping them;
they are built on first use (``llmcost_nb.BudgetExceeded``, ``llmcost_nb.replay.ReplayMiss``) so importing
llmcost_nb does not import the SDKs. Argument checks (a negative limit, an unknown keyword) raise the plain
builtin ``ValueError``/``TypeError``: they are not in this tree.

This module imports nothing from llmcost_nb: every layer may import it.
"""

from __future__ import annotations

__all__ = [
    "AccessError",
    "AnalysisError",
    "BudgetError",
    "DemoFailed",
    "ExperimentError",
    "ExportFormatError",
    "FilterError",
    "GridOverBudget",
    "LedgerError",
    "LedgerNotYours",
    "LlmcostError",
    "LlmcostWarning",
    "NotAMember",
    "NotAdmin",
    "PricingError",
    "RecordingError",
    "ReplayMiss",
    "SyncError",
    "TeamError",
    "UnknownModel",
    "UsageError",
]


class LlmcostError(Exception):
    """Base class of every exception llmcost_nb raises on purpose."""


class LlmcostWarning(UserWarning):
    """A problem inside llmcost_nb that did not stop the user's call."""


# ledger
class LedgerError(LlmcostError):
    """The ledger file cannot be opened or written (the message says why and what to do)."""


class FilterError(LedgerError, TypeError):
    """``calls()`` was given a filter it does not know (the message lists the allowed ones)."""


# pricing
class PricingError(LlmcostError):
    """A call could not be priced."""


class UnknownModel(PricingError, LookupError):
    """Neither an override nor genai-prices knows the model's price."""

    def __init__(self, model: str, provider: str | None) -> None:
        super().__init__(f"Unknown model {model!r} (provider {provider!r}): set its price with "
                         f"llmcost_nb.set_price({model!r}, input_mtok=..., output_mtok=...)")
        self.model, self.provider = model, provider


class UsageError(PricingError, ValueError):
    """A response body whose token usage is missing or not believable."""


# analysis
class AnalysisError(LlmcostError, ValueError):
    """A query the analysis cannot run (the message names the allowed values)."""


# budget
class BudgetError(LlmcostError):
    """Base of ``BudgetExceeded`` (built on first use with the SDK base errors; see llmcost_nb.budget)."""


# recording
class RecordingError(LlmcostError):
    """Recording or replaying responses failed."""


class ReplayMiss(RecordingError):
    """replay-only mode and no recording for this request: nothing was sent.

    The raised instances belong to a subclass built on first use that also subclasses the SDK base errors
    (``llmcost_nb.replay.ReplayMiss``); ``except`` this class or that one.
    """


# experiments
class ExperimentError(LlmcostError):
    """An experiment (``compare``) could not run."""


class GridOverBudget(ExperimentError):
    """The grid's worst-case cost is over the budget: nothing was sent."""


# team
class TeamError(LlmcostError):
    """The team ledger (PostgreSQL) or a provider export failed."""


class SyncError(TeamError):
    """A sync could not finish (server unreachable, bad DSN); what was committed stays, the rest waits."""


class AccessError(TeamError):
    """The team ledger's access control refused (the message names the role and the fix); nothing written."""


class NotAdmin(AccessError):
    """``llmcost team init`` / ``add-member`` / ... run by a role that cannot manage the team ledger."""


class NotAMember(AccessError):
    """The role is not a member of the team ledger (no team, not FinOps): an admin runs ``add-member``."""


class LedgerNotYours(AccessError):
    """The local ledger was registered on the team ledger by another role: only that role may sync it."""


class ExportFormatError(TeamError, ValueError):
    """The file is not one of the accepted provider exports."""


# the demo
class DemoFailed(LlmcostError, RuntimeError):
    """The notebook stopped with an error (one line: the error and where the partial run was saved)."""
