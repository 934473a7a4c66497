from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()


@register.simple_tag(takes_context=True)
def sort_header(context, key: str, label: str):
    """A column header that sorts by key, toggling direction, keeping the other filters."""
    current = context.get("sort", "")
    base = context.get("querystring_without_sort", "")
    descending = current == key
    target = f"-{key}" if descending else key
    arrow = " ▲" if current == key else " ▼" if current == f"-{key}" else ""
    aria = "ascending" if current == key else "descending" if current == f"-{key}" else "none"
    query = f"{base}&sort={target}" if base else f"sort={target}"
    return format_html('<th aria-sort="{}"><a href="?{}">{}{}</a></th>', aria, query, label, arrow)


@register.filter
def badge(value, css: str = ""):
    text = str(value) if value not in (None, "") else "—"
    return format_html('<span class="badge {}">{}</span>', css or str(value).lower(), text)


@register.filter
def person_or_orphaned(person):
    if person is None:
        return mark_safe('<span class="badge missing">orphaned</span>')  # noqa: S308 (a constant)
    return format_html('<a href="/people/{}/">{}</a>', person.pk, person)


@register.filter
def timeuntil_delta(delta):
    """A timedelta as "3 days, 4 hours" (the oldest waiting request)."""
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} day{'s' if days != 1 else ''}, {hours} hour{'s' if hours != 1 else ''}"
    if hours:
        return f"{hours} hour{'s' if hours != 1 else ''}, {minutes} min"
    return f"{minutes} min"
