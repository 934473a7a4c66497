"""REST API under /api/v1/ (the API issue fills this)."""

urlpatterns = []
