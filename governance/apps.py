from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Imported here, not at the top: they need the models, which are loaded only now.
        import governance.tasks  # noqa: F401 - registers the tasks the outbox publishes by name (task_names)

        # ready(): these modules need the app registry loaded
        from governance.discovery.setup import discovery_ready
        from governance.lookups import register_lookups
        from governance.models.deliveries import register_rules as register_delivery_rules
        from governance.services.recovery import register_lease_recoveries

        register_lookups()
        register_lease_recoveries()
        register_delivery_rules()
        discovery_ready()
