"""hooks.around: a hook with the hooked method's own signature, passing every argument through as given."""

from __future__ import annotations

import http.client
import inspect

import pytest
import urllib3.connection
import urllib3.connectionpool

from llmcost_nb.tracking import hooks

SHARED: dict[str, int] = {}


def target(a, b, /, c, d=SHARED, *args, e, f=3, **kw):
    return a, b, c, d, args, e, f, kw


def recording_hook(log: list, state: object = "state"):
    def enter(a, c, e):
        log.append(("enter", a, c, e))
        return state

    def leave(st, exc):
        log.append(("leave", st, exc))

    return hooks.around(target, ("a", "c", "e"), enter, leave)


def test_every_kind_of_parameter_reaches_the_method_as_given() -> None:
    log: list = []
    hooked = recording_hook(log)
    assert hooked(1, 2, 3, e=5, z=9) == (1, 2, 3, SHARED, (), 5, 3, {"z": 9})
    assert hooked(1, 2, 3, 4, 5, 6, e=7, f=8) == (1, 2, 3, 4, (5, 6), 7, 8, {})
    assert hooked(1, 2, c=3, e=4)[3] is SHARED  # the very default object, not a copy
    assert log[:2] == [("enter", 1, 3, 5), ("leave", "state", None)]
    assert inspect.signature(hooked) == inspect.signature(target)


def test_the_callers_mistakes_raise_what_the_method_would_raise() -> None:
    hooked = recording_hook([])
    for call in (lambda f: f(1, 2, 3), lambda f: f(1, c=2, e=3), lambda f: f(1, 2, 3, e=1, c=4)):
        with pytest.raises(TypeError) as ours:
            call(hooked)
        with pytest.raises(TypeError) as theirs:
            call(target)
        assert str(ours.value).split("()", 1)[-1] == str(theirs.value).split("()", 1)[-1]


def test_enter_none_lets_the_call_through_and_leave_is_not_called() -> None:
    log: list = []
    hooked = hooks.around(target, ("a",), lambda a: None, lambda st, exc: log.append(st))
    assert hooked(1, 2, 3, e=4)[0] == 1 and log == []


def test_an_answered_call_never_reaches_the_method() -> None:
    called: list = []

    def method(x):
        called.append(x)
        return "sent"

    hooked = hooks.around(method, ("x",), lambda x: hooks.Answered(f"replayed {x}"), None)
    assert hooked(7) == "replayed 7" and called == []


def test_what_the_method_raises_is_given_to_leave_then_raised_again() -> None:
    log: list = []

    def method(x):
        raise ConnectionError(x)

    hooked = hooks.around(method, ("x",), lambda x: "st", lambda st, exc: log.append((st, exc)))
    with pytest.raises(ConnectionError, match="down"):
        hooked("down")
    assert log[0][0] == "st" and isinstance(log[0][1], ConnectionError)


def test_a_traceback_through_the_hook_shows_its_lines() -> None:
    import traceback

    def method(x):
        raise ConnectionError(x)

    hooked = hooks.around(method, ("x",), lambda x: "st", lambda st, exc: None)
    with pytest.raises(ConnectionError) as info:
        hooked("down")
    text = "".join(traceback.format_exception(info.value))
    assert "llmcost_nb hook of" in text and "_llmcost_result = _llmcost_original(x)" in text


def test_what_enter_raises_stops_the_call_before_the_method_runs() -> None:
    called: list = []

    class Stop(Exception):
        pass

    def enter(x):
        raise Stop("over budget")

    hooked = hooks.around(lambda x: called.append(x), ("x",), enter, None)
    with pytest.raises(Stop):
        hooked(1)
    assert called == []


def test_a_parameter_the_hook_needs_and_the_method_lacks_is_refused_at_patch_time() -> None:
    with pytest.raises(TypeError, match="no parameter"):
        hooks.around(target, ("a", "missing"), lambda *a: None, None)


@pytest.mark.parametrize("method", [http.client.HTTPConnection.request,
                                    urllib3.connection.HTTPConnection.request,
                                    urllib3.connectionpool.HTTPConnectionPool._make_request])
def test_the_hooked_library_methods_keep_their_signatures(method) -> None:
    hooked = hooks.around(method, ("self",), lambda self: None, None)
    code = hooked.__code__
    assert code.co_varnames[:code.co_argcount + code.co_kwonlyargcount] == \
        method.__code__.co_varnames[:method.__code__.co_argcount + method.__code__.co_kwonlyargcount]
    assert hooked.__defaults__ == method.__defaults__ and hooked.__kwdefaults__ == method.__kwdefaults__
