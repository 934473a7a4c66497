from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Report jobs are leased work: the lease recovery re-renders one whose worker was lost.
        import reports.tasks  # noqa: F401 - registers the task the outbox publishes by name
        from governance import leases  # the apps' models are loaded only now

        # ready(): these modules need the app registry loaded
        from reports.models import ReportJob, ReportJobStatus
        from reports.services import report_jobs_recover

        leases.register_recovery(leases.Recovery(
            name="report_jobs", model=ReportJob, running=ReportJobStatus.RUNNING, recover=report_jobs_recover))
