"""`{{ user|role_labels }}`: the user's roles (岗位) in the reader's language, for the console's top bar."""

from django import template

from accounts.roles import Role

register = template.Library()


@register.filter
def role_labels(user) -> str:
    names = [group.name for group in user.groups.all()]
    return "、".join(str(Role(n).label) if n in Role.values else n for n in names)
