"""Generate a report from the command line: the same job row, render and audit trail as the portal."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from governance.audit import Actor
from governance.models import Person
from reports.models import ReportJobStatus, ReportKind
from reports.services import report_job_create, report_job_run


class Command(BaseCommand):
    help = ("Generate a framework evidence pack (--framework KEY), the workflow inventory (--kind inventory) or an "
            "attestation campaign report (--campaign ID) as PDF/A-3, record it like a portal request, and copy it "
            "to --output.")

    def add_arguments(self, parser):
        parser.add_argument("--framework",
                            help="Framework key in the catalogue (owasp_nhi_top10_2025, nist_csf_2_0, ...).")
        parser.add_argument("--campaign", help="Attestation campaign id, for an attestation campaign report.")
        parser.add_argument("--kind", choices=ReportKind.values, default=None,
                            help="Report kind (default: framework_pack when --framework is given, "
                                 "attestation_campaign when --campaign is given).")
        parser.add_argument("--scope", help="estate (default), team:NAME or system:NAME; an attestation campaign "
                                            "report covers its campaign's scope.")
        parser.add_argument("--period-start", help="YYYY-MM-DD (default: 90 days before the period end).")
        parser.add_argument("--period-end", help="YYYY-MM-DD (default: today).")
        parser.add_argument("--as-of",
                            help="YYYY-MM-DDTHH:MM:SSZ shown as 'generated at' (default: end of period end).")
        parser.add_argument("--requested-by", help="Username to record as the requester (checked like the portal).")
        parser.add_argument("--output", required=True, help="Where to write the PDF.")

    def handle(self, *args, **options):
        kind = options["kind"] or self._kind_from(options)
        parameters = {"scope": options["scope"], "period_start": options["period_start"],
                      "period_end": options["period_end"], "as_of": options["as_of"]}
        if kind == ReportKind.FRAMEWORK_PACK:
            parameters["framework"] = options["framework"]
        if kind == ReportKind.ATTESTATION_CAMPAIGN:
            parameters["campaign"] = options["campaign"]
        parameters = {k: v for k, v in parameters.items() if v}
        actor = Actor.system(task_id="generate_report", label="generate_report")
        if options["requested_by"]:
            person = Person.objects.filter(username=options["requested_by"]).first()
            if person is None:
                raise CommandError(f"No person {options['requested_by']!r}.")
            actor = Actor.for_user(person)
        try:
            job = report_job_create(actor=actor, kind=kind, parameters=parameters, enqueue=False)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"Rendering report #{job.pk}: {job.title}")
        job = report_job_run(job_id=job.pk)
        if job is None or job.status != ReportJobStatus.SUCCEEDED:
            reason = job.error if job is not None else "the job was claimed by another worker"
            raise CommandError(f"Report failed: {reason}")
        output = Path(options["output"])
        output.parent.mkdir(parents=True, exist_ok=True)
        with job.file.open("rb") as source, open(output, "wb") as target:
            shutil.copyfileobj(source, target)
        self.stdout.write(f"{output}: {job.page_count} pages, {job.size} bytes, SHA-256 {job.sha256}")

    @staticmethod
    def _kind_from(options) -> str:
        if options["framework"] and options["campaign"]:
            raise CommandError("Give --framework or --campaign, not both (or name the report with --kind).")
        if options["framework"]:
            return ReportKind.FRAMEWORK_PACK
        if options["campaign"]:
            return ReportKind.ATTESTATION_CAMPAIGN
        raise CommandError("Give --framework KEY for an evidence pack, --campaign ID for an attestation campaign "
                           "report, or --kind inventory.")
