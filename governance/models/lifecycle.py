"""Models of the lifecycle capability."""
