"""Site-wide views: the home page and the health check."""

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection

from governance import roles, selectors
from portal.celery import app as celery_app
from portal.home import SECTION_ROWS, home_context
from reports.selectors import report_job_list


@login_required
def home(request):
    """Governance's sections of the home page, and, for those who read everything, the latest reports."""
    context = home_context(user=request.user)
    if roles.reads_everything(request.user):
        context["reports"] = {"jobs": report_job_list(user=request.user).order_by("-pk")[:SECTION_ROWS]}
    return render(request, "portal/home.html", context)


def _database_status() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True, connection.vendor
    except Exception as exc:  # noqa: BLE001 - any failure means "not answering"
        return False, f"{type(exc).__name__}: {exc}"[:200]


def _broker_status() -> tuple[bool, str]:
    """A fresh connection each time (never a pooled one), so the answer is about the broker now."""
    conf = celery_app.conf
    try:
        with Connection(conf.broker_url, transport_options=conf.broker_transport_options or {},
                        connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            return True, conn.transport.driver_type
    except Exception as exc:  # noqa: BLE001 - any failure means "not answering"
        return False, f"{type(exc).__name__}: {exc}"[:200]


@never_cache
@require_GET
def healthz(request):
    """JSON health of the database and the broker: 200 when both answer, 503 otherwise."""
    db_ok, db_detail = _database_status()
    broker_ok, broker_detail = _broker_status()
    ok = db_ok and broker_ok
    body = {
        "status": "ok" if ok else "unavailable",
        "database": {"ok": db_ok, "detail": db_detail},
        "broker": {"ok": broker_ok, "detail": broker_detail},
    }
    return JsonResponse(body, status=200 if ok else 503)


@login_required
def search(request):
    query = request.GET.get("q", "")
    results = selectors.global_search(user=request.user, query=query)
    total = sum(len(rows) for rows in results.values())
    return render(request, "portal/search.html", {"query": query, "results": results, "total": total})
