"""Portal pages of the reports app. Thin: the form shapes input, services write, selectors read.

What a user may not see answers 404: people who may not generate reports at all, and jobs that
are neither theirs nor (for auditors and security admins) everyone's.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from governance.audit import Actor
from governance.views.common import deny_unless
from reports import selectors, services
from reports.forms import ReportRequestForm
from reports.models import ReportJobStatus
from reports.scopes import may_generate_reports

LIST_LIMIT = 50


def _job_or_404(request, pk: int):
    return get_object_or_404(selectors.report_job_list(user=request.user), pk=pk)


@login_required
@require_http_methods(["GET", "POST"])
def report_list(request):
    deny_unless(may_generate_reports(request.user))
    # Links elsewhere (a campaign's page, an auditor's home) open the form with their choice made.
    initial = {name: request.GET[name] for name in ("kind", "framework", "campaign", "scope") if name in request.GET}
    form = ReportRequestForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.report_job_create(actor=Actor.for_user(request.user), kind=form.cleaned_data["kind"],
                                             parameters=form.parameters())
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        except PermissionDenied as exc:
            form.add_error("scope", str(exc))
        else:
            messages.success(request, f"Report requested: {job.title}. It is being generated in the background.")
            return redirect("report-detail", pk=job.pk)
    jobs = selectors.report_job_list(user=request.user)[:LIST_LIMIT]
    return render(request, "reports/report_list.html", {"form": form, "jobs": jobs})


@login_required
@require_GET
def report_detail(request, pk: int):
    job = _job_or_404(request, pk)
    return render(request, "reports/report_detail.html", {"job": job})


@login_required
@require_GET
def report_status(request, pk: int):
    """The JSON the progress bar polls."""
    job = _job_or_404(request, pk)
    done = job.status == ReportJobStatus.SUCCEEDED
    return JsonResponse({
        "id": job.pk, "status": job.status, "status_label": job.get_status_display(), "progress": job.progress,
        "error": job.error, "sha256": job.sha256 or None, "size": job.size, "pages": job.page_count,
        "download_url": reverse("report-download", args=[job.pk]) if done else None,
        "finished": job.is_finished,
    })


@login_required
@require_GET
def report_download(request, pk: int):
    job = _job_or_404(request, pk)
    if job.status != ReportJobStatus.SUCCEEDED or not job.file:
        raise Http404("This report has no file (yet).")
    try:
        handle = job.file.open("rb")
    except FileNotFoundError:
        raise Http404("The report file is missing.") from None
    services.report_download_record(actor=Actor.for_user(request.user), job=job)
    response = FileResponse(handle, as_attachment=True, filename=job.download_name,
                            content_type="application/pdf")
    response["X-Report-SHA256"] = job.sha256
    return response
