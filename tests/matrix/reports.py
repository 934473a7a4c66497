"""Permission-matrix rules for the reports pages (a team report requested by the owner persona)."""

import atexit

from tests.matrix_personas import OWN

# Who may generate: auditors, security admins and anyone with a scope of their own (a team or a
# system); the outsider persona belongs to no team and owns nothing.
GENERATORS = {**OWN, "approver": 200}


def _team_report(estate, personas):
    from django.core.files.base import ContentFile

    from governance.audit import Actor
    from reports.models import ReportJob
    from reports.services import report_job_create

    job = report_job_create(actor=Actor.for_user(personas.owner), kind="inventory",
                            parameters={"scope": f"team:{personas.team.name}"}, enqueue=False)
    job.file.save(f"matrix-{job.pk}.pdf", ContentFile(b"%PDF-1.7 matrix"), save=False)
    atexit.register(job.file.storage.delete, job.file.name)  # the matrix runs against the real MEDIA_ROOT
    ReportJob.objects.filter(pk=job.pk).update(status="succeeded", progress=100, file=job.file.name,
                                               sha256="0" * 64, size=15, page_count=1)
    return {"pk": job.pk}


KWARGS = {"report_job": _team_report}

RULES = {
    "report-list": (None, GENERATORS),
    "report-detail": ("report_job", OWN),
    "report-status": ("report_job", OWN),
    "report-download": ("report_job", OWN),
}
