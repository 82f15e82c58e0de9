"""Capture hooks per HTTP stack, the recorder (exchange -> Call), scopes and sessions, manual record/log."""
