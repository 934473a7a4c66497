from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from governance.services.recovery import register_lease_recoveries  # services need the models loaded

        register_lease_recoveries()
