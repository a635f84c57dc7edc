"""Running experiments with Lightning: the fit → test → results recipe, the LightningModules that train predictor
networks (``modules/``), the routing losses, callbacks and loggers."""
