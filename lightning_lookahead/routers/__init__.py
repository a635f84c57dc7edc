"""Routers: every one produces a (prompts x candidates) score matrix."""
