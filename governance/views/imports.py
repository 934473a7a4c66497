"""Upload page for inventory import (the same service as `manage.py import_inventory`)."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from governance import roles
from governance.audit import Actor
from governance.forms import ImportForm
from governance.services import exchange
from governance.views.common import deny_unless


@login_required
@require_http_methods(["GET", "POST"])
def inventory_import(request):
    deny_unless(roles.is_signed_in(request.user) and not (roles.is_auditor(request.user)
                                                          and not roles.is_security_admin(request.user)))
    form = ImportForm(request.POST or None, request.FILES or None, object_types=("all", *exchange.OBJECT_TYPES))
    errors = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        object_type = form.cleaned_data["object_type"]
        if upload.size > settings.STEWARD_MAX_UPLOAD_BYTES:
            form.add_error("file", f"The file is larger than {settings.STEWARD_MAX_UPLOAD_BYTES // (1024 * 1024)} MiB; "
                                   "use manage.py import_inventory.")
        else:
            try:
                result = exchange.import_inventory(
                    actor=Actor.for_user(request.user), content=upload.read(), filename=upload.name,
                    object_type=None if object_type == "all" else object_type)
            except exchange.ImportRejected as exc:
                errors = exc.errors
                form.add_error(None, f"Nothing was imported: {len(errors)} problem(s) in the file.")
            else:
                summary = ", ".join(
                    f"{t}: {result.created.get(t, 0)} created, {result.updated.get(t, 0)} updated, "
                    f"{result.unchanged.get(t, 0)} unchanged"
                    for t in exchange.OBJECT_TYPES
                    if result.created.get(t) or result.updated.get(t) or result.unchanged.get(t)
                )
                messages.success(request, f"Import complete. {summary or 'The file held no rows.'}")
                return redirect("inventory-import")
    return render(request, "governance/import.html", {"form": form, "errors": errors})
