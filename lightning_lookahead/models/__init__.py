"""Plain ``nn.Module`` networks, their input builders and configs, no Lightning (see docs/architecture.md).

One folder per predictor (``mlm/``, ``clm/``, ``mlc/``, ``gt_response/``), each with ``config.py`` (the ``model:``
settings, importable without torch), ``inputs.py`` (tokenisation and collation) and ``network.py`` (the network and
its builder). :mod:`~lightning_lookahead.models.registry` maps ``model.kind`` to them.
"""
