"""Portal pages of the checks capability."""

urlpatterns = []
