"""Scorers for :func:`llmcost_nb.compare`: each turns a model's output (and the input row) into a score
in [0, 1]; a cell *succeeds* when its call succeeded and its score reaches the threshold (0.5 by default).

>>> exact_match()("Paris", {"expected": " paris "})
1.0
>>> numeric(tolerance=0.01)("The answer is 3.14159", {"expected": 3.14})
1.0
>>> contains(field="keyword")("It rains in Lyon", {"keyword": "lyon"})
1.0

A scorer is any callable ``scorer(output, item) -> float | bool | None`` (None: not scored). The LLM judge,
:class:`LLMJudge`, asks a model to grade each output; its calls are captured with the tag ``role=judge`` so
their cost is shown apart from the candidates'.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LLMJudge",
    "contains",
    "custom",
    "exact_match",
    "json_valid",
    "llm_judge",
    "numeric",
    "regex",
    "resolve_scorer",
]

Scorer = Callable[[str, Mapping[str, Any]], Any]
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _norm(text: Any, case: bool) -> str:
    text = " ".join(str(text).split())
    return text if case else text.lower()


def _expected(item: Mapping[str, Any], field: str) -> Any:
    if field not in item:
        raise KeyError(
            f"the scorer reads the field {field!r}, but the input has only "
            f"{', '.join(sorted(map(str, item)))}"
        )
    return item[field]


def _named(fn: Scorer, name: str) -> Scorer:
    fn.__name__ = fn.__qualname__ = name
    return fn


def exact_match(field: str = "expected", *, case_sensitive: bool = False, strip: str = " .!\n") -> Scorer:
    """1.0 when the output equals ``item[field]`` (whitespace collapsed, case ignored, trailing ``strip``
    characters removed); a list of accepted answers is allowed."""

    def score(output: str, item: Mapping[str, Any]) -> float:
        expected = _expected(item, field)
        accepted = expected if isinstance(expected, list | tuple) else [expected]
        got = _norm(output, case_sensitive).strip(strip)
        return float(any(got == _norm(a, case_sensitive).strip(strip) for a in accepted))

    return _named(score, f"exact_match({field!r})")


def contains(field: str = "expected", *, case_sensitive: bool = False) -> Scorer:
    """1.0 when ``item[field]`` (or any of a list) occurs in the output."""

    def score(output: str, item: Mapping[str, Any]) -> float:
        expected = _expected(item, field)
        accepted = expected if isinstance(expected, list | tuple) else [expected]
        got = _norm(output, case_sensitive)
        return float(any(_norm(a, case_sensitive) in got for a in accepted))

    return _named(score, f"contains({field!r})")


def regex(pattern: str | None = None, *, field: str | None = None, flags: int = re.IGNORECASE) -> Scorer:
    """1.0 when the output matches ``pattern`` (or the pattern in ``item[field]``), searched anywhere."""
    if (pattern is None) == (field is None):
        raise ValueError("regex scorer: give exactly one of pattern= or field=")
    compiled = re.compile(pattern, flags) if pattern is not None else None

    def score(output: str, item: Mapping[str, Any]) -> float:
        rx = compiled or re.compile(str(_expected(item, field)), flags)  # type: ignore[arg-type]
        return float(rx.search(output) is not None)

    return _named(score, f"regex({pattern or field!r})")


def json_valid(*, required_keys: tuple[str, ...] = ()) -> Scorer:
    """1.0 when the output parses as JSON (a fenced ```json block is unwrapped) with ``required_keys``."""

    def score(output: str, item: Mapping[str, Any]) -> float:
        text = output.strip()
        if text.startswith("```"):
            text = text.strip("`").removeprefix("json").strip()
        try:
            value = json.loads(text)
        except ValueError:
            return 0.0
        return float(all(isinstance(value, dict) and key in value for key in required_keys))

    return _named(score, "json_valid")


def numeric(field: str = "expected", *, tolerance: float = 1e-6, relative: bool = False) -> Scorer:
    """1.0 when the last number in the output is within ``tolerance`` of ``item[field]`` (absolute, or
    relative to the expected value with ``relative=True``)."""

    def score(output: str, item: Mapping[str, Any]) -> float:
        numbers = _NUMBER.findall(output)
        if not numbers:
            return 0.0
        got, want = float(numbers[-1].replace(",", "")), float(_expected(item, field))
        allowed = tolerance * abs(want) if relative else tolerance
        return float(abs(got - want) <= allowed)

    return _named(score, f"numeric({field!r}, tolerance={tolerance:g})")


def custom(fn: Callable[..., Any], name: str | None = None) -> Scorer:
    """A user function ``fn(output, item)`` as a scorer; a bool counts as 1.0 / 0.0."""

    def score(output: str, item: Mapping[str, Any]) -> float | None:
        value = fn(output, item)
        return None if value is None else float(value)

    return _named(score, name or getattr(fn, "__name__", "custom"))


JUDGE_PROMPT = (
    "You grade answers. Question: {question}\nReference answer: {expected}\nCandidate answer: "
    "{output}\nReply with exactly one word: PASS if the candidate answer is correct, else FAIL."
)


@dataclass
class LLMJudge:
    """An LLM as judge: asks ``model`` to grade each output; PASS → 1.0, FAIL → 0.0, a number in the reply
    (0–1, or 0–10 scaled) → that score. ``prompt`` is a template over the input's fields plus ``{output}``;
    ``client``: any client :func:`compare` takes (default: the comparison's own).

    >>> judge = llm_judge("gpt-4.1-mini", prompt="Is {output} the capital of {country}? PASS or FAIL")
    """

    model: str
    prompt: str = JUDGE_PROMPT
    client: Any = None
    max_tokens: int = 16

    @property
    def __name__(self) -> str:
        return f"llm_judge({self.model!r})"

    def request(self, output: str, item: Mapping[str, Any]) -> dict[str, Any]:
        fields = {"question": "", "expected": "", **item, "output": output}
        try:
            content = self.prompt.format_map(fields)
        except KeyError as exc:
            raise KeyError(
                f"the judge prompt uses {{{exc.args[0]}}} but the input has only "
                f"{', '.join(sorted(map(str, fields)))}"
            ) from None
        return {"messages": [{"role": "user", "content": content}], "max_tokens": self.max_tokens}

    @staticmethod
    def parse(reply: str) -> float | None:
        """The score in a judge's reply: PASS/FAIL (or YES/NO), else the first number."""
        words = re.findall(r"[A-Za-z]+", reply.upper())
        for word in words:
            if word in ("PASS", "YES", "CORRECT"):
                return 1.0
            if word in ("FAIL", "NO", "INCORRECT", "WRONG"):
                return 0.0
        numbers = _NUMBER.findall(reply)
        if not numbers:
            return None
        value = float(numbers[0].replace(",", ""))
        return max(0.0, min(1.0, value / 10 if value > 1 else value))


def llm_judge(
    model: str, *, prompt: str = JUDGE_PROMPT, client: Any = None, max_tokens: int = 16
) -> LLMJudge:
    """An :class:`LLMJudge` grading with ``model``; its calls are tagged ``role=judge``."""
    return LLMJudge(model, prompt, client, max_tokens)


_BY_NAME: dict[str, Callable[[], Any]] = {
    "exact": exact_match,
    "exact_match": exact_match,
    "contains": contains,
    "json": json_valid,
    "json_valid": json_valid,
    "numeric": numeric,
}


def resolve_scorer(scorer: Any) -> Any:
    """A scorer from what the user passed: None, a name, an :class:`LLMJudge` or a callable."""
    if scorer is None or isinstance(scorer, LLMJudge):
        return scorer
    if isinstance(scorer, str):
        if scorer not in _BY_NAME:
            raise ValueError(
                f"unknown scorer {scorer!r}, allowed names: {', '.join(sorted(_BY_NAME))} "
                "(or pass a callable scorer(output, item))"
            )
        return _BY_NAME[scorer]()
    if callable(scorer):
        return scorer
    raise TypeError(
        f"scorer must be a name, a callable scorer(output, item) or llm_judge(...), "
        f"got {type(scorer).__name__}"
    )
