"""An OpenAI-compatible routing server: route each chat request, forward it to the chosen candidate's backend."""

from lightning_lookahead.serving.app import ServerSettings, create_app, serve
from lightning_lookahead.serving.backends import Backend, load_backends

__all__ = ["Backend", "ServerSettings", "create_app", "load_backends", "serve"]
