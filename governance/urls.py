from django.urls import path

from governance.views import (
    approvals,
    attestation,
    audit,
    checks,
    discovery,
    imports,
    integrations,
    inventory,
    lifecycle,
    lists,
    notifications,
    people,
    stores,
    sweeps,
)

KINDS = {"workflows": "workflow", "credentials": "credential", "systems": "system", "stores": "secretstore"}

urlpatterns = [
    path("people/", people.person_list, name="person-list"),
    path("people/<int:pk>/", people.person_detail, name="person-detail"),
    path("people/<int:pk>/depart/", people.person_depart, name="person-depart"),
    path("teams/", people.team_list, name="team-list"),
    path("teams/<int:pk>/", people.team_detail, name="team-detail"),
    path("audit/", audit.audit_log, name="audit-log"),
    path("audit/export.<str:fmt>", audit.audit_export, name="audit-export"),
    path("import/", imports.inventory_import, name="inventory-import"),
    path("workflows/<int:pk>/bindings/new/", inventory.binding_create, name="binding-create"),
    path("systems/<int:pk>/hosts/", inventory.system_hosts, name="system-hosts"),
    *approvals.urlpatterns,
    *checks.urlpatterns,
    *lifecycle.urlpatterns,
    *integrations.urlpatterns,
    *attestation.urlpatterns,
    *sweeps.urlpatterns,
    *stores.urlpatterns,
    *discovery.urlpatterns,
    *lists.urlpatterns,
    *notifications.urlpatterns,
]

for prefix, kind in KINDS.items():
    urlpatterns += [
        path(f"{prefix}/", inventory.object_list, {"kind": kind}, name=f"{kind}-list"),
        path(f"{prefix}/export.<str:fmt>", inventory.object_export, {"kind": kind}, name=f"{kind}-export"),
        path(f"{prefix}/new/", inventory.object_create, {"kind": kind}, name=f"{kind}-create"),
        path(f"{prefix}/<int:pk>/", inventory.object_detail, {"kind": kind}, name=f"{kind}-detail"),
        path(f"{prefix}/<int:pk>/edit/", inventory.object_edit, {"kind": kind}, name=f"{kind}-edit"),
        path(f"{prefix}/<int:pk>/retire/", inventory.object_retire, {"kind": kind}, name=f"{kind}-retire"),
        path(f"{prefix}/<int:pk>/transfer/", inventory.object_transfer, {"kind": kind}, name=f"{kind}-transfer"),
    ]
    if kind in ("workflow", "credential"):  # one approval request per ticked row (views/lists.py)
        urlpatterns += [
            path(f"{prefix}/bulk/transfer/", inventory.object_bulk, {"kind": kind, "action": "ownership_transfer"},
                 name=f"{kind}-bulk-transfer"),
            path(f"{prefix}/bulk/retire/", inventory.object_bulk, {"kind": kind, "action": "retirement"},
                 name=f"{kind}-bulk-retire"),
        ]
    if kind != "secretstore":  # the kinds with a state machine (governance.services.states)
        urlpatterns.append(path(f"{prefix}/<int:pk>/transition/", inventory.object_transition, {"kind": kind},
                                name=f"{kind}-transition"))
