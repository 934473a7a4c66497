"""Portal pages of the attestation capability."""

urlpatterns = []
