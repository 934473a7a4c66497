"""Models of the approvals capability."""
