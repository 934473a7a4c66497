"""Permission-matrix rules, one module per capability, each exporting RULES (see tests/test_permission_matrix.py)."""
