"""The package version: one place, read by setup.cfg, ``lookahead --version``, exports and the server."""

__version__ = "0.1.0"
