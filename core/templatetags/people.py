"""`{{ user|person }}`: a person's name as colleagues write it (core/people.py)."""

from django import template

from core.people import person_name

register = template.Library()


@register.filter
def person(user) -> str:
    return person_name(user)
