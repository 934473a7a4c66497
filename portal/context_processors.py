from django.conf import settings

from governance import roles


def steward(request):
    user = getattr(request, "user", None)
    return {
        "STEWARD_VERSION": settings.STEWARD_VERSION,
        "is_security_admin": roles.is_security_admin(user),
        "is_auditor": roles.is_auditor(user),
        "nav": request.path.strip("/").split("/")[0],
    }
