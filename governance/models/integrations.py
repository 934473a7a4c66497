"""Models of the integrations capability."""
