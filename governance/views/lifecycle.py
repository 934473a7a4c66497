"""Portal pages of the lifecycle capability."""

urlpatterns = []
