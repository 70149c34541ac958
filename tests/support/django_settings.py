"""Django configured once per test process, on the session's database, for every test that uses it (the
Django example's view, the publishing guide's Django snippet): `settings.configure` works once per process,
so two tests configuring it each their own way would depend on which ran first."""

from __future__ import annotations

from sqlalchemy.engine import make_url


def configure_django(url: str) -> None:
    import django
    from django.conf import settings

    if settings.configured:
        return
    parts = make_url(url)
    settings.configure(
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": parts.database, "USER": parts.username or "postgres", "PASSWORD": parts.password or "",
                "HOST": parts.host, "PORT": str(parts.port or 5432),
            }
        },
        ROOT_URLCONF="examples.django_signup.urls", ALLOWED_HOSTS=["testserver"], INSTALLED_APPS=[],
        USE_TZ=True, DEBUG=False,
    )  # fmt: skip
    django.setup()
