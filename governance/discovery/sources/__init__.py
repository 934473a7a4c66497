"""Discovery sources: one typed module per kind of source, each read-only, each yielding Observed items."""
