"""The LightningModules that train predictor networks, and which one trains each ``model.kind``."""
