import datetime

from django import template

from casenotes.rules import moment_text

register = template.Library()


@register.filter
def get_item(mapping, key):
    """`{{ hints|get_item:choice.data.value }}`"""
    return mapping.get(str(key), "") if mapping else ""


@register.filter
def ends(moment) -> str:
    """When access ends, as people say it (`rules.moment_text`): `{{ g.expires_at|ends }}`"""
    return moment_text(moment) if isinstance(moment, datetime.datetime) else ""


@register.filter
def is_group(choice_label) -> bool:
    """Is this choice a group of choices (a select's optgroup)? `{% if text|is_group %}`"""
    return isinstance(choice_label, list | tuple)
