"""An OpenAI-compatible routing server: route each chat request, forward it to the chosen candidate's backend.

The names below are imported on first use, so the command-line parser can read the serve options
(``serving.settings``) without importing fastapi or torch.
"""

from __future__ import annotations

from lightning_lookahead.lazy import lazy_exports

_EXPORTS = {
    "Backend": "lightning_lookahead.backends",
    "load_backends": "lightning_lookahead.backends",
    "LoadedRouter": "lightning_lookahead.serving.app",
    "create_app": "lightning_lookahead.serving.app",
    "ServeSpec": "lightning_lookahead.serving.settings",
    "ServerSettings": "lightning_lookahead.serving.settings",
    "serve": "lightning_lookahead.serving.launch",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
