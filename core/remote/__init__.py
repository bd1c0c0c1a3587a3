"""The core services of a running ``nightscan serve``, over its HTTP API, with the same method
names and return types as the local ones (what ``nightscan tui --server`` attaches to)."""
