"""Bulk routing of a prompt log (`lookahead route --file LOG --out OUT`): sharded, resumable, on one or N processes.

``source`` checks the log and indexes its shards, ``shard`` routes one shard (the same bytes on any process),
``parts`` keeps finished shards and the resume manifest, ``job`` is what every process shares, ``run`` drives one
process (no Lightning) and ``ddp`` several with Lightning's predict loop. Nothing here imports Lightning unless
``--devices`` is above 1.
"""

from __future__ import annotations

from lightning_lookahead.inference.bulk.job import BulkJob
from lightning_lookahead.inference.bulk.run import route_file
from lightning_lookahead.inference.bulk.shard import RouteSettings, Routing

__all__ = ["BulkJob", "RouteSettings", "Routing", "route_file"]
