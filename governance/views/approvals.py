"""Portal pages of the approvals capability."""

urlpatterns = []
