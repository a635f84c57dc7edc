"""Running experiments: loggers, callbacks, the fit → test → results recipe."""
