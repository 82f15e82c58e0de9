"""Moved to :mod:`llmcost_nb.testing.sample_data`; this path keeps working,
`python -m llmcost_nb.sample_data` too."""

from .testing.sample_data import MODELS, SampleLedger, generate, sample_ledger

__all__ = ["MODELS", "SampleLedger", "generate", "sample_ledger"]

if __name__ == "__main__":
    import sys

    from .testing.sample_data import main

    sys.exit(main())
