"""The fake provider and its wire formats, sample data, the demo."""

from .fake import FakeProvider, RecordedRequest, count_tokens

__all__ = ["FakeProvider", "RecordedRequest", "count_tokens"]
