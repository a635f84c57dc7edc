"""Subcommands of the `lookahead` command, one module per command group.

Each module exposes ``add_parser(subparsers)``, which registers its subcommand(s) with ``func`` set to the
``cmd_*`` function that runs it; ``lightning_lookahead.cli`` wires them together. Heavy imports stay inside the
``cmd_*`` functions so that ``lookahead --help`` starts fast.
"""
