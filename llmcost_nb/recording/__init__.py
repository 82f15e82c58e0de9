"""Record and replay LLM responses."""
