"""Permission-matrix rules for the portal's working pages (#19): connector health, kill-switch checklist."""

from tests.matrix_personas import POST_ONLY

RULES = {
    "secretstore-probe": ("store", POST_ONLY),
}
