"""Models of the checks capability: the control catalogue, findings, sweep runs and posture snapshots.

The catalogue (frameworks, controls, checks and the check-to-control mapping) is data loaded
from governance/catalogue/control-catalogue.yaml by `manage.py load_catalogue`; the rules each
check applies live in governance/checks/. A finding is one check failing for one object, with
at most one unresolved finding per (check, object), enforced by the database.
"""

from django.db import models
from django.db.models import Q
from django.urls import reverse

from governance.choices import check_in
from governance.models.base import LeasedModel, RestrictedQuerySet
from governance.models.people import Person, Team

FINDING_TYPE = "governance.finding"  # findings' object type in the audit trail


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2, Severity.LOW: 3}
RISK_RANK_UNRANKED = 999  # a finding no sweep has ranked yet sorts after every ranked one (services/risk.py)


class Strength(models.TextChoices):
    PRIMARY = "P", "Primary"
    SUPPORTING = "S", "Supporting"


class FindingState(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RISK_ACCEPTED = "risk_accepted", "Risk accepted"
    RESOLVED = "resolved", "Resolved"


UNRESOLVED_STATES = (FindingState.OPEN, FindingState.ACKNOWLEDGED, FindingState.RISK_ACCEPTED)

# The finding state machine, in one place: event -> (states it may start from, state it leads to).
FINDING_TRANSITIONS = {
    "acknowledge": ((FindingState.OPEN,), FindingState.ACKNOWLEDGED),
    "accept_risk": (
        (FindingState.OPEN, FindingState.ACKNOWLEDGED, FindingState.RISK_ACCEPTED),
        FindingState.RISK_ACCEPTED,
    ),
    "expire_risk_acceptance": ((FindingState.RISK_ACCEPTED,), FindingState.OPEN),
    "resolve": (UNRESOLVED_STATES, FindingState.RESOLVED),
    "reopen": ((FindingState.RESOLVED,), FindingState.OPEN),
}


class CheckStatus(models.TextChoices):
    NEVER = "never", "Never evaluated"
    EVALUATED = "evaluated", "Evaluated"
    NOT_EVALUATED = "not_evaluated", "Not evaluated"
    ERROR = "error", "Error"


class SweepStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIAL = "partial", "Partly failed"
    FAILED = "failed", "Failed"


class Framework(models.Model):
    key = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    short_name = models.CharField(max_length=40, blank=True)
    version = models.CharField(max_length=200, blank=True)
    source = models.TextField(blank=True)
    sort_order = models.PositiveIntegerField(default=0)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["sort_order", "key"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("framework-detail", args=[self.key])


class Control(models.Model):
    """A framework's control, identified exactly as the framework writes it (NHI2:2025, PR.AA-01, A.5.17)."""

    framework = models.ForeignKey(Framework, on_delete=models.CASCADE, related_name="controls")
    identifier = models.CharField(max_length=40)
    title = models.CharField(max_length=400, blank=True)
    category = models.CharField(max_length=200, blank=True)
    aliases = models.JSONField(
        default=list, blank=True, help_text="Former identifiers (CSF 1.1 for CSF 2.0)."
    )
    sort_order = models.PositiveIntegerField(default=0)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["framework__sort_order", "sort_order", "identifier"]
        constraints = [
            models.UniqueConstraint(fields=["framework", "identifier"], name="control_identifier_unique"),
        ]

    def __str__(self):
        return self.identifier

    @property
    def formerly(self) -> str:
        return ", ".join(self.aliases or [])


class Check(models.Model):
    """One governance rule, with a stable code. Its logic is governance.checks.registry[code]."""

    code = models.SlugField(max_length=60, unique=True)
    catalogue_id = models.CharField(max_length=20, blank=True)
    name = models.CharField(max_length=200)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    explanation = models.TextField()
    remediation = models.TextField()
    subject_types = models.JSONField(default=list, blank=True)
    sort_order = models.PositiveIntegerField(default=0)
    controls = models.ManyToManyField(
        Control, through="CheckControl", through_fields=("mapped_check", "control"), related_name="checks"
    )
    # The latest evaluation, kept here so that pages read one row instead of re-running the check.
    last_status = models.CharField(max_length=16, choices=CheckStatus.choices, default=CheckStatus.NEVER)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    last_evaluated_count = models.PositiveIntegerField(default=0)
    last_failed_count = models.PositiveIntegerField(default=0)
    last_detail = models.CharField(max_length=500, blank=True)
    state = models.JSONField(default=dict, blank=True, help_text="What the check keeps between runs.")

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["sort_order", "code"]
        constraints = [
            models.CheckConstraint(condition=check_in("severity", Severity), name="check_severity_valid"),
            models.CheckConstraint(
                condition=check_in("last_status", CheckStatus), name="check_last_status_valid"
            ),
        ]

    def __str__(self):
        return self.code

    @property
    def last_passed_count(self) -> int:
        return max(self.last_evaluated_count - self.last_failed_count, 0)


class CheckControl(models.Model):
    mapped_check = models.ForeignKey(
        Check, on_delete=models.CASCADE, related_name="mappings", db_column="check_id"
    )
    control = models.ForeignKey(Control, on_delete=models.CASCADE, related_name="mappings")
    strength = models.CharField(max_length=1, choices=Strength.choices)

    class Meta:
        ordering = ["mapped_check", "control"]
        constraints = [
            models.UniqueConstraint(fields=["mapped_check", "control"], name="checkcontrol_unique"),
            models.CheckConstraint(
                condition=check_in("strength", Strength), name="checkcontrol_strength_valid"
            ),
        ]

    def __str__(self):
        return f"{self.mapped_check.code} -> {self.control.identifier} ({self.strength})"


class CatalogueVersion(models.Model):
    version = models.CharField(max_length=100)
    sha256 = models.CharField(max_length=64)
    source = models.CharField(max_length=300)
    summary = models.JSONField(default=dict, blank=True)
    loaded_at = models.DateTimeField(auto_now_add=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-loaded_at", "-pk"]
        get_latest_by = "loaded_at"

    def __str__(self):
        return f"{self.version} ({self.sha256[:12]})"


class Finding(models.Model):
    # Named failed_check because a field called "check" would hide Model.check() (models.E020).
    failed_check = models.ForeignKey(
        Check, on_delete=models.PROTECT, related_name="findings", db_column="check_id"
    )
    object_type = models.CharField(max_length=100)
    object_id = models.BigIntegerField()
    object_repr = models.CharField(max_length=300, blank=True)
    state = models.CharField(max_length=16, choices=FindingState.choices, default=FindingState.OPEN)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    reopened_count = models.PositiveIntegerField(default=0)
    evidence = models.JSONField(default=dict, blank=True)
    acknowledged_by = models.ForeignKey(
        Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_comment = models.TextField(blank=True)
    risk_accepted_until = models.DateTimeField(null=True, blank=True)
    risk_acceptance_request_id = models.BigIntegerField(null=True, blank=True)
    # Denormalised from the object at each sweep, for filters and for restrict().
    owner = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    team = models.ForeignKey(Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    ticket_system = models.CharField(max_length=40, blank=True)
    ticket_key = models.CharField(max_length=100, blank=True)
    ticket_url = models.URLField(max_length=500, blank=True)
    # Set by the sweep only (services/risk.py): lower is worse, 0 a critical finding on an admin credential
    # of a critical system; the list's default order is (risk_rank, id), the oldest first among equals.
    risk_rank = models.PositiveSmallIntegerField(default=RISK_RANK_UNRANKED, editable=False)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-last_seen_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["failed_check", "object_type", "object_id"],
                condition=~Q(state=FindingState.RESOLVED),
                name="finding_one_unresolved_per_check_object",
            ),
            models.CheckConstraint(condition=check_in("state", FindingState), name="finding_state_valid"),
            models.CheckConstraint(
                condition=Q(state=FindingState.RESOLVED, resolved_at__isnull=False)
                | (~Q(state=FindingState.RESOLVED) & Q(resolved_at__isnull=True)),
                name="finding_resolved_at_matches_state",
            ),
            models.CheckConstraint(
                condition=~Q(state=FindingState.RISK_ACCEPTED)
                | Q(risk_accepted_until__isnull=False, risk_acceptance_request_id__isnull=False),
                name="finding_risk_acceptance_has_request_and_expiry",
            ),
        ]
        # The list's sort columns with the primary key (ORDER BY <column>, id LIMIT 50 walks the index);
        # (owner, id) and (team, id) for the per-owner and per-team reads.
        indexes = [
            models.Index(fields=["failed_check", "state"]),
            models.Index(fields=["object_type", "object_id"]),
            models.Index(fields=["last_seen_at", "id"], name="finding_seen_id"),
            models.Index(fields=["first_seen_at", "id"], name="finding_first_seen_id"),
            models.Index(fields=["state", "id"], name="finding_state_id"),
            models.Index(fields=["object_repr", "id"], name="finding_object_repr_id"),
            models.Index(fields=["owner", "id"], name="finding_owner_id"),
            models.Index(fields=["team", "id"], name="finding_team_id"),
            models.Index(fields=["risk_rank", "id"], name="finding_risk_id"),
        ]

    def __str__(self):
        return f"{self.failed_check.code}: {self.object_repr or self.object_id}"

    def get_absolute_url(self):
        return reverse("finding-detail", args=[self.pk])

    @property
    def is_resolved(self) -> bool:
        return self.state == FindingState.RESOLVED

    @property
    def confirmed_at(self):
        """When a sweep last saw it failing. The sweep writes last_seen_at only when it opens, reopens or
        refreshes a finding; every later sweep of the check confirms all its unresolved findings."""
        check = self.failed_check
        if self.is_resolved or check.last_status != CheckStatus.EVALUATED or check.last_evaluated_at is None:
            return self.last_seen_at
        return max(self.last_seen_at, check.last_evaluated_at)


class SweepRun(LeasedModel):
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=SweepStatus.choices, default=SweepStatus.RUNNING)
    trigger = models.CharField(max_length=40)
    checks = models.JSONField(default=list, blank=True, help_text="Codes of the checks this run evaluated.")
    counts = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=dict, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=check_in("status", SweepStatus), name="sweeprun_status_valid"),
        ]
        indexes = [models.Index(fields=["status", "lease_expires_at"])]

    def __str__(self):
        return f"sweep #{self.pk} ({self.trigger}, {self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class CheckSummary(models.Model):
    """One sweep's result for one check in one team or for one owner: how many objects it evaluated, how many failed.

    Written by the sweep in each check's transaction (with the findings it opened) and published when the
    run finishes: the team and owner posture pages read these few rows instead of aggregating a million
    objects per view, and say which sweep they are as of. Only a finished sweep's rows are read; the run's
    last transaction drops the rows earlier sweeps wrote for the same checks.
    """

    TEAM, OWNER = "team", "owner"
    SCOPE_TYPES = [(TEAM, "Team"), (OWNER, "Owner")]

    sweep = models.ForeignKey(SweepRun, on_delete=models.CASCADE, related_name="summaries")
    summarised_check = models.ForeignKey(Check, on_delete=models.CASCADE, related_name="summaries",
                                         db_column="check_id")
    scope_type = models.CharField(max_length=8, choices=SCOPE_TYPES)
    scope_id = models.BigIntegerField(help_text="The team's or the owner's id.")
    evaluated = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["sweep", "summarised_check", "scope_type", "scope_id"]
        constraints = [
            models.UniqueConstraint(fields=["sweep", "summarised_check", "scope_type", "scope_id"],
                                    name="checksummary_unique_per_sweep_check_scope"),
            models.CheckConstraint(condition=Q(scope_type__in=["team", "owner"]), name="checksummary_scope_valid"),
        ]
        indexes = [models.Index(fields=["scope_type", "scope_id"], name="checksummary_scope")]

    def __str__(self):
        return f"sweep {self.sweep_id} {self.summarised_check_id} {self.scope_type}:{self.scope_id} " \
               f"{self.failed}/{self.evaluated}"


class PostureSnapshot(models.Model):
    """Per day, per scope (the estate or a team) and per check: how many objects passed and failed."""

    ESTATE, TEAM = "estate", "team"

    date = models.DateField()
    scope_type = models.CharField(max_length=16, choices=[(ESTATE, "Estate"), (TEAM, "Team")])
    scope_key = models.CharField(max_length=120, blank=True)
    check_code = models.CharField(max_length=60)
    passed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0, help_text="Failing, with an accepted risk.")
    taken_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["date", "scope_type", "scope_key", "check_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["date", "scope_type", "scope_key", "check_code"],
                name="posturesnapshot_unique_per_day",
            ),
        ]

    def __str__(self):
        return f"{self.date} {self.scope_type}:{self.scope_key} {self.check_code} {self.passed}/{self.failed}"


def _reference_rule(queryset, user, action):
    """The catalogue is reference data: every signed-in person reads it; only security admins change it."""
    return queryset if action == "view" else queryset.none()


def _readers_only_rule(queryset, user, action):
    """Sweep runs and estate snapshots: for auditors and security admins (who pass before this rule)."""
    return queryset.none()


def _finding_rule(queryset, user, action):
    """A finding is visible to whoever may view its object; estate-level findings to readers only.

    As in restrict(): one UNION of the findings of each object type whose object the user may see, each
    branch joined through the (object_type, object_id) index from the few thousand visible ids, rather
    than an EXISTS per object type tested against every finding; taken as an id set (governance.lookups),
    so a page is never filled by walking the findings in its order past the ones the user may not see.
    """
    # Imported at call time: discovery imports this module, and permissions imports the models package.
    from governance.models.discovery import DiscoveredItem
    from governance.models.inventory import Credential, System, Workflow
    from governance.permissions import visible_ids

    branches = [
        Finding.objects.filter(object_type=model._meta.label_lower, object_id__in=visible_ids(model, user, action))
        .order_by().values("pk")
        for model in (Credential, Workflow, System, DiscoveredItem)
    ]
    return queryset.filter(pk__in_id_set=branches[0].union(*branches[1:]))


def _register_rules() -> None:
    # cycle: governance.permissions imports the models
    from governance.permissions import register_model_rule

    for model in (Framework, Control, Check, CheckControl, CatalogueVersion):
        register_model_rule(model, _reference_rule)
    for model in (SweepRun, PostureSnapshot, CheckSummary):
        register_model_rule(model, _readers_only_rule)
    register_model_rule(Finding, _finding_rule)


_register_rules()
