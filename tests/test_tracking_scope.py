"""A scope's repr words its total as every view does (issue 16): unknown never $0, estimated never exact."""

from __future__ import annotations

from _honest import honest_calls

from llmcost_nb.tracking.scope import Scope


def test_a_scopes_repr_says_what_its_total_leaves_out_and_guesses():
    priced, estimated, unpriced, _, failed = honest_calls()  # $1.2, ≈$0.0042, unpriced ×2, not billed
    scope = Scope(kind="track", name="mix")
    assert repr(scope) == "<Scope track mix: 0 calls, $0.0000>"
    scope.add(priced)
    assert repr(scope) == "<Scope track mix: 1 calls, $1.2000>"
    for call in (estimated, unpriced, failed):
        scope.add(call)
    assert repr(scope) == "<Scope track mix: 4 calls, ≈$1.2042 (1 estimated) + 1 unpriced>"
    only_unpriced = Scope(kind="cell", name="ft")
    only_unpriced.add(unpriced)
    assert repr(only_unpriced) == "<Scope cell ft: 1 calls, 1 unpriced>"
