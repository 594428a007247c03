from django import template

register = template.Library()


@register.filter
def dictget(row: dict, key: str):
    """`row|dictget:column` — column names may contain spaces or CJK, so no dotted lookup."""
    return row.get(key) if isinstance(row, dict) else None
