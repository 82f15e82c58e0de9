"""llmcost_nb — see what every LLM call costs, where experiments happen: in the notebook.

>>> import llmcost_nb
>>> with llmcost_nb.track(tags={"variant": "A"}) as t:          # doctest: +SKIP
...     client.chat.completions.create(model="gpt-4.1", messages=msgs)
>>> t.total_cost                                                 # doctest: +SKIP
Decimal('0.0142')

In Jupyter: ``%load_ext llmcost_nb`` then ``%%llmcost --tag variant=A`` on a cell.
"""

from ._api import disable, enable, log, log_many, record, set_price
from ._call import Call
from ._warnings import LlmcostWarning
from .ledger import Ledger, LedgerError
from .scope import Scope, Session, get_session, track

__all__ = [
    "Call",
    "Ledger",
    "LedgerError",
    "LlmcostWarning",
    "Scope",
    "Session",
    "disable",
    "enable",
    "get_session",
    "log",
    "log_many",
    "record",
    "set_price",
    "track",
]
__version__ = "0.1.0"
