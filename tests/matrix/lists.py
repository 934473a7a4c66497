"""Permission-matrix rules for the lists people work in (#19 item 8): saved views and bulk requests."""

from tests.matrix_personas import NOBODY, POST_ONLY


def _list_key(estate, personas):
    return {"list_key": "credential"}


def _saved_view(estate, personas):
    # Imported here like the other matrix modules: they are loaded while the URL list is collected.
    from governance.models.saved_views import SavedView
    from governance.services.saved_views import saved_view_save

    existing = SavedView.objects.filter(owner=personas.owner, name="matrix view").first()
    view = existing or saved_view_save(owner=personas.owner, list_key="credential", name="matrix view",
                                       query="status=active", columns=["name", "status"])
    return {"pk": view.pk}


KWARGS = {"list_key": _list_key, "saved_view": _saved_view}

RULES = {
    "saved-view-create": ("list_key", POST_ONLY),
    # Only its owner opens a saved view (a redirect to the list); anyone else's id is missing.
    "saved-view-apply": ("saved_view", {**NOBODY, "owner": 302}),
    "saved-view-delete": ("saved_view", POST_ONLY),
    "credential-bulk-transfer": (None, POST_ONLY),
    "credential-bulk-retire": (None, POST_ONLY),
    "workflow-bulk-transfer": (None, POST_ONLY),
    "workflow-bulk-retire": (None, POST_ONLY),
}
