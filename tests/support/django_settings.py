"""Django configured once per test process, on the session's database, for every test that uses it (the
Django example's view, the publishing guide's Django snippet): `settings.configure` works once per process,
so two tests configuring it each their own way would depend on which ran first. The settings are the
example's own, with the test client's host allowed."""

from __future__ import annotations

from examples.django_signup.__main__ import django_settings


def configure_django(url: str) -> None:
    import django
    from django.conf import settings

    if settings.configured:
        return
    chosen = django_settings(url)
    settings.configure(**chosen | {"ALLOWED_HOSTS": [*chosen["ALLOWED_HOSTS"], "testserver"]})
    django.setup()
