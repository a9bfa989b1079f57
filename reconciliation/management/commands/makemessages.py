from django.core.management.commands import makemessages


class Command(makemessages.Command):
    # reconciliation.services imports gettext as `_t` (its `_` is a throwaway name): extract those strings too,
    # or its error messages would never reach the catalog and people would read them in English.
    xgettext_options = [*makemessages.Command.xgettext_options, "--keyword=_t"]
