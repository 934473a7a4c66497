"""Models of the checks capability."""
