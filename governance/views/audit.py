"""The global audit log, for auditors and security admins, with filters and export."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from governance import filtersets, roles, selectors
from governance.audit import verify_chain
from governance.views.common import deny_unless, filtered_page, tabular_response

EXPORT_LIMIT = 100_000
EXPORT_FIELDS = (
    "sequence", "occurred_at", "actor_kind", "actor_id", "actor_label", "on_behalf_of_id", "task_id", "action",
    "object_type", "object_id", "object_repr", "summary", "changes", "request_id", "client_request_id",
    "source_address",
    "prev_hash", "hash",
)


@login_required
def audit_log(request):
    deny_unless(roles.reads_everything(request.user))
    context = filtered_page(request, selectors.audit_event_list(user=request.user),
                            filtersets.AuditEventFilterSet,
                            sort_fields={"sequence": "sequence", "time": "occurred_at", "action": "action"},
                            default_sort="-sequence")
    if request.GET.get("verify") == "1":
        context["verification"] = verify_chain()
    return render(request, "governance/audit_log.html", context)


@login_required
def audit_export(request, fmt: str):
    deny_unless(roles.reads_everything(request.user))
    filterset = filtersets.AuditEventFilterSet(request.GET or None,
                                               queryset=selectors.audit_event_list(user=request.user))
    queryset = filterset.qs if filterset.is_bound and filterset.is_valid() else filterset.queryset
    rows = list(queryset.order_by("sequence").values(*EXPORT_FIELDS)[:EXPORT_LIMIT])
    return tabular_response(rows, fmt=fmt, filename="audit-events")
