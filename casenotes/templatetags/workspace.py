from django import template

register = template.Library()


@register.filter
def get_item(mapping, key):
    """`{{ hints|get_item:choice.data.value }}`"""
    return mapping.get(str(key), "") if mapping else ""
