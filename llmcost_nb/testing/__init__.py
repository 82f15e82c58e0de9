"""The fake provider and its wire formats, sample data, the demo."""

from .fake import FakeProvider, RecordedRequest, count_tokens
from .reset import reset

__all__ = ["FakeProvider", "RecordedRequest", "count_tokens", "reset"]
