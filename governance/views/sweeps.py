"""Portal pages of sweep now: the button (security admins), a run's page and its progress (readers).

Thin: the button calls services.sweep_now; a second sweep while one runs is refused there, and the
page of the running one opens instead.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from governance import roles
from governance.audit import Actor
from governance.models.checks import SweepRun
from governance.services.sweep_now import SweepAlreadyRunning, sweep_now_request, sweep_progress
from governance.views.common import deny_unless, get_restricted_or_404


@login_required
@require_POST
def sweep_now(request):
    deny_unless(roles.is_security_admin(request.user))
    try:
        run = sweep_now_request(actor=Actor.for_user(request.user))
    except SweepAlreadyRunning as running:
        messages.warning(request, running.messages[0])
        return redirect("sweep-detail", pk=running.run.pk)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect("posture-dashboard")
    messages.success(request, f"Sweep #{run.pk} queued: {len(run.checks)} checks are evaluated in the background.")
    return redirect("sweep-detail", pk=run.pk)


@login_required
def sweep_detail(request, pk: int):
    run = get_restricted_or_404(SweepRun, request.user, pk)
    rows = [{"code": code, "counts": run.counts.get(code), "error": run.errors.get(code, "")} for code in run.checks]
    return render(request, "governance/sweeps/sweep_detail.html", {
        "run": run, "rows": rows, "progress": sweep_progress(run), "nav": "posture"})


@login_required
def sweep_progress_json(request, pk: int):
    return JsonResponse(sweep_progress(get_restricted_or_404(SweepRun, request.user, pk)))


urlpatterns = [
    path("sweeps/now/", sweep_now, name="sweep-now"),
    path("sweeps/<int:pk>/", sweep_detail, name="sweep-detail"),
    path("sweeps/<int:pk>/progress.json", sweep_progress_json, name="sweep-progress"),
]
