"""The IPython extension, magics, widgets, dashboard, charts, display and share."""
