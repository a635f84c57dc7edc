"""Recipe search: search spaces, the Optuna study behind `lookahead tune`, and its outputs."""
