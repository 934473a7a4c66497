"""Site-wide roles, held as membership of named Django groups.

Object-level rights (owner, team) live in django-guardian grants; these roles are the few
estate-wide ones: auditors read everything and change nothing; security admins manage
policies, the catalogue and kill switches. The groups and their membership change only through
the audited services in governance.services.people (role_groups_ensure, role_member_add/remove).
"""

AUDITORS = "Auditors"
SECURITY_ADMINS = "Security admins"
ROLE_GROUPS = (AUDITORS, SECURITY_ADMINS)


def _group_names(user) -> frozenset[str]:
    cached = getattr(user, "_steward_group_names", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True)) if user.pk else frozenset()
        user._steward_group_names = cached
    return cached


def forget_roles(user) -> None:
    """Drop the per-object role cache after group membership changed."""
    if hasattr(user, "_steward_group_names"):
        del user._steward_group_names


def is_signed_in(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def is_security_admin(user) -> bool:
    return is_signed_in(user) and (user.is_superuser or SECURITY_ADMINS in _group_names(user))


def is_auditor(user) -> bool:
    return is_signed_in(user) and AUDITORS in _group_names(user)


def reads_everything(user) -> bool:
    return is_security_admin(user) or is_auditor(user)

