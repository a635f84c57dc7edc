"""An OpenAI-compatible routing server: route each chat request, forward it to the chosen candidate's backend."""

from lightning_lookahead.backends import Backend, load_backends
from lightning_lookahead.serving.app import LoadedRouter, ServerSettings, create_app
from lightning_lookahead.serving.launch import ServeSpec, serve

__all__ = ["Backend", "LoadedRouter", "ServeSpec", "ServerSettings", "create_app", "load_backends", "serve"]
