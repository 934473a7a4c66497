"""Expected-status shorthands for the permission matrix (tests/test_permission_matrix.py, tests/matrix/)."""

PERSONAS = ("anonymous", "owner", "backup_owner", "approver", "auditor", "secadmin", "outsider")
SIGNED_IN = PERSONAS[1:]
# An object owned by the owner persona's team (the approver belongs to another team).
OWN = {"owner": 200, "backup_owner": 200, "approver": 404, "auditor": 200, "secadmin": 200, "outsider": 404}
OWN_CHANGE = {**OWN, "auditor": 404}
EVERYONE = {p: 200 for p in SIGNED_IN}
READERS = {p: 404 for p in SIGNED_IN} | {"auditor": 200, "secadmin": 200}
ADMINS = {p: 404 for p in SIGNED_IN} | {"secadmin": 200}
WRITERS = {**EVERYONE, "auditor": 404}
NOBODY = {p: 404 for p in SIGNED_IN}
POST_ONLY = {p: 405 for p in SIGNED_IN}
# Anonymous visitors get 302 (to sign in) unless a rule says otherwise.
