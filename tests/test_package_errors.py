"""One error tree: every exception llmcost_nb exports is an ``LlmcostError``; the CLI shows it in one line."""

from __future__ import annotations

import importlib
import pkgutil

import anthropic
import openai
import pytest
from click.testing import CliRunner

import llmcost_nb
from llmcost_nb import errors
from llmcost_nb.cli import main


def _public_modules():
    yield llmcost_nb
    for info in pkgutil.walk_packages(llmcost_nb.__path__, "llmcost_nb."):
        yield importlib.import_module(info.name)


def _exported_exceptions():
    """(module, name, class) for every exception class in a public ``__all__`` (warnings are not errors)."""
    for module in _public_modules():
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)  # getattr: BudgetExceeded is built on first use
            if isinstance(value, type) and issubclass(value, Exception) and not issubclass(value, Warning):
                yield module.__name__, name, value


def test_every_exported_exception_is_an_llmcost_error():
    found = list(_exported_exceptions())
    names = {name for _, name, _ in found}
    assert {"BudgetExceeded", "GridOverBudget", "LedgerError", "SyncError", "UnknownModel"} <= names
    outside = [(module, name) for module, name, cls in found if not issubclass(cls, llmcost_nb.LlmcostError)]
    assert outside == []


def test_one_class_per_name():
    """A class imported elsewhere is the class defined in errors.py, not a copy."""
    for module, name, cls in _exported_exceptions():
        if hasattr(errors, name) and name not in ("BudgetExceeded", "ReplayMiss"):
            assert cls is getattr(errors, name), f"{module}.{name}"


def test_the_old_paths_still_import():
    from llmcost_nb.analysis import AnalysisError
    from llmcost_nb.experiments.compare import GridOverBudget
    from llmcost_nb.ledger import LedgerError
    from llmcost_nb.pricing import UnknownModel
    from llmcost_nb.pricing.usage import UsageError
    from llmcost_nb.team import SyncError
    from llmcost_nb.team.reconcile import ExportFormatError
    from llmcost_nb.testing.demo import DemoFailed

    old = (AnalysisError, GridOverBudget, LedgerError, UnknownModel, UsageError, SyncError, ExportFormatError,
           DemoFailed)
    assert old == (errors.AnalysisError, errors.GridOverBudget, errors.LedgerError, errors.UnknownModel,
                   errors.UsageError, errors.SyncError, errors.ExportFormatError, errors.DemoFailed)


@pytest.mark.parametrize(("cls", "bases"), [
    (errors.FilterError, (errors.LedgerError, TypeError)),
    (errors.UnknownModel, (errors.PricingError, LookupError)),
    (errors.UsageError, (errors.PricingError, ValueError)),
    (errors.AnalysisError, (errors.LlmcostError, ValueError)),
    (errors.ReplayMiss, (errors.RecordingError,)),
    (errors.GridOverBudget, (errors.ExperimentError,)),
    (errors.SyncError, (errors.TeamError,)),
    (errors.ExportFormatError, (errors.TeamError, ValueError)),
    (errors.DemoFailed, (errors.LlmcostError, RuntimeError)),
])
def test_each_error_keeps_its_builtin_base(cls, bases):
    """``except ValueError`` (etc.) written before the tree still catches what it caught."""
    assert cls.__bases__ == bases


def test_budget_exceeded_keeps_the_sdk_bases():
    exc_class = llmcost_nb.BudgetExceeded
    assert exc_class.__module__ == "llmcost_nb"
    assert issubclass(exc_class, errors.BudgetError)
    assert issubclass(exc_class, openai.OpenAIError) and issubclass(exc_class, anthropic.AnthropicError)


def test_replay_miss_is_the_error_trees_and_the_raised_one_keeps_the_sdk_bases(fake, tmp_path):
    assert llmcost_nb.replay.ReplayMiss is errors.ReplayMiss  # importable without building anything
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=0)
    replay_only = llmcost_nb.replay("replay-only", path=tmp_path / "empty.jsonl")
    with replay_only, pytest.raises(errors.ReplayMiss) as info:
        client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    assert isinstance(info.value, openai.OpenAIError) and isinstance(info.value, anthropic.AnthropicError)
    assert fake.request_count == 0


def test_an_unknown_filter_is_a_filter_error_and_still_a_type_error(ledger):
    with pytest.raises(errors.FilterError, match="unknown filter 'colour', allowed filters: api, bi") as info:
        ledger.calls(colour="red")
    assert isinstance(info.value, TypeError)


def test_errors_imports_nothing_from_the_package():
    source = importlib.util.find_spec("llmcost_nb.errors").origin
    with open(source) as handle:
        text = handle.read()
    imports = [line for line in text.splitlines() if line.startswith(("from ", "import "))]
    assert imports == ["from __future__ import annotations"]


def test_the_cli_shows_an_llmcost_error_as_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corrupt.db").write_bytes(b"not a ledger, just text " * 200)
    result = CliRunner().invoke(main, ["report", "--db", "corrupt.db"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: corrupt.db is not a usable llmcost_nb ledger (")
    assert "move the file aside" in result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


def test_the_cli_group_shows_only_the_first_line(tmp_path):
    """A command's LlmcostError with a multi-line message: the first line, exit status 1, no traceback."""
    import click

    from llmcost_nb.cli.app import _Group

    @click.group(cls=_Group)
    def group():
        pass

    @group.command()
    def fail():
        raise errors.SyncError("the server went away\nsecond line, not shown")

    @group.group()
    def sub():
        pass

    @sub.command()
    def deeper():
        raise errors.UnknownModel("m", None)

    result = CliRunner().invoke(group, ["fail"])
    assert (result.exit_code, result.output) == (1, "Error: the server went away\n")
    result = CliRunner().invoke(group, ["sub", "deeper"])
    assert result.exit_code == 1 and result.output.startswith("Error: Unknown model 'm' (provider None)")
    assert "Traceback" not in result.output
