"""Django configured once per test process, on the session's database, for every test that uses it (the
Django example's views, the Django Tasks backend, the publishing guide's Django snippet): `settings.configure`
works once per process, so two tests configuring it each their own way would depend on which ran first. The
settings are the example's own module (examples/django_signup/settings.py), read with DATABASE_URL naming the
test's database for the moment of its import only: the process's environment is left as it was."""

from __future__ import annotations

import importlib
import sys
from unittest import mock

SETTINGS = "examples.django_signup.settings"


def configure_django(url: str) -> None:
    import django
    from django.conf import settings

    if settings.configured:
        return
    with mock.patch.dict("os.environ", {"DATABASE_URL": url}):
        sys.modules.pop(SETTINGS, None)
        module = importlib.import_module(SETTINGS)
    settings.configure(**{name: getattr(module, name) for name in dir(module) if name.isupper()})
    django.setup()
