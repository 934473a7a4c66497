"""Portal actions on a secret store beyond the inventory pages: "Test connection" (connector health)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.urls import path
from django.views.decorators.http import require_POST

from governance import roles
from governance.audit import Actor
from governance.models import SecretStore
from governance.services.store_health import secret_store_probe
from governance.views.common import deny_unless, get_restricted_or_404


@login_required
@require_POST
def secretstore_probe(request, pk: int):
    deny_unless(roles.is_security_admin(request.user))
    store = get_restricted_or_404(SecretStore, request.user, pk)
    try:
        result = secret_store_probe(actor=Actor.for_user(request.user), store=store)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except PermissionDenied as exc:
        messages.error(request, str(exc) or "You may not do this.")
    else:
        if result.ok:
            messages.success(request, f"Connection to {store} works: {result.summary}")
        else:
            messages.error(request, f"Connection test of {store} failed: {result.summary}")
    return redirect(store.get_absolute_url())


urlpatterns = [
    path("stores/<int:pk>/test-connection/", secretstore_probe, name="secretstore-probe"),
]
