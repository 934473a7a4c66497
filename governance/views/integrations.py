"""Portal pages of the integrations capability."""

urlpatterns = []
