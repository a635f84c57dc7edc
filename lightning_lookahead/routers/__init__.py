"""Routers (anything that turns benchmark items into a score matrix) and the LightningModules that train predictors."""
