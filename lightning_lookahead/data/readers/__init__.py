"""One reader per on-disk source format; each returns :class:`RoutingExample` records."""
