"""Portal pages for people and teams."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from governance import filtersets, roles, selectors
from governance.audit import Actor
from governance.models import Person, Team
from governance.services import people as people_services
from governance.views.common import deny_unless, detail_tabs, filtered_page, get_restricted_or_404


@login_required
def person_list(request):
    context = filtered_page(request, selectors.person_list(user=request.user), filtersets.PersonFilterSet,
                            sort_fields={"username": "username", "name": "last_name", "status": "status"},
                            default_sort="username")
    return render(request, "governance/person_list.html", context)


@login_required
def person_detail(request, pk: int):
    person = get_restricted_or_404(Person, request.user, pk)
    tab = request.GET.get("tab", "overview")
    context = {
        "object": person,
        "tab": tab,
        "tabs": detail_tabs(),
        "teams": Team.objects.filter(group__in=person.groups.all()).select_related("manager"),
        "history": selectors.object_history(obj=person)[:200] if tab == "history" else None,
        "may_depart": roles.is_security_admin(request.user) and not person.is_departed,
        **selectors.owned_by(user=request.user, person=person),
    }
    return render(request, "governance/person_detail.html", context)


@login_required
@require_POST
def person_depart(request, pk: int):
    deny_unless(roles.is_security_admin(request.user))
    person = get_restricted_or_404(Person, request.user, pk)
    try:
        counts = people_services.person_mark_departed(actor=Actor.for_user(request.user), person=person)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    else:
        messages.success(request, f"{person} marked departed: {counts['reassigned']} object(s) passed to a backup "
                                  f"manager, {counts['orphaned']} orphaned.")
    return redirect("person-detail", pk=person.pk)


@login_required
def team_list(request):
    teams = selectors.team_list(user=request.user)
    return render(request, "governance/team_list.html", {"rows": teams})


@login_required
def team_detail(request, pk: int):
    team = get_restricted_or_404(Team, request.user, pk)
    return render(request, "governance/team_detail.html", {
        "object": team,
        "members": team.members.order_by("username"),
        "workflows": selectors.workflow_list(user=request.user).filter(team=team).order_by("name"),
        "credential_count": selectors.credential_list(user=request.user).filter(team=team).count(),
    })
