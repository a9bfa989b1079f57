"""django-filter under the input policy: query parameters a person types are checked like JSON bodies."""

from datetime import date

from django_filters import utils
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError

from core import inputs


class PolicyFilterBackend(DjangoFilterBackend):
    """DjangoFilterBackend that answers 400 naming the parameter for text storage would refuse (NUL, unpaired
    surrogates) and for dates outside the business window (core.inputs.date_problem), on top of the filterset's
    own validation, so a filter value never reaches the database as something it cannot compare."""

    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        problems = {}
        for name in filterset.filters:
            for value in request.query_params.getlist(name):
                if problem := inputs.text_problem(value):
                    problems[name] = [problem]
        if problems:
            raise ValidationError(problems)
        if not filterset.is_valid():
            raise utils.translate_validation(filterset.errors)
        for name, value in filterset.form.cleaned_data.items():
            values = [value.start, value.stop] if isinstance(value, slice) else [value]
            for day in values:
                if isinstance(day, date) and (problem := inputs.date_problem(day)):
                    problems[name] = [problem]
        if problems:
            raise ValidationError(problems)
        return filterset.qs
