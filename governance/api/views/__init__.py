"""API views, one module per area. Thin: restricted querysets in, services for every write."""
