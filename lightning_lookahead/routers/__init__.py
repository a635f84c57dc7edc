"""Score-matrix routers: anything that turns benchmark items into a (prompts × candidates) score matrix.

:mod:`~lightning_lookahead.routers.base` defines :class:`Router` and :class:`FittedRouter` (and oracle, fixed,
random); :mod:`~lightning_lookahead.routers.registry` turns ``--router`` specs into routers. The LightningModules that
train predictors live in :mod:`lightning_lookahead.training.modules`.
"""
