"""Configuration from the environment: development needs nothing, production refuses unsafe
settings, and the documented production settings pass Django's deployment checks."""

import pytest

from tests.helpers import PRODUCTION, manage


def test_documented_production_settings_pass_the_deployment_checks():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    "secret_key",
    ["", "short", "django-insecure-" + "x" * 60],
    ids=["missing", "too-short", "django-insecure"],
)
def test_with_debug_off_the_service_refuses_to_start_without_a_real_secret_key(secret_key):
    result = manage("check", **{**PRODUCTION, "SECRET_KEY": secret_key})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_development_needs_no_variable_at_all():
    result = manage("check", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


def test_redis_url_moves_the_cache_and_sessions_to_redis():
    script = "from django.conf import settings as s;print(s.CACHES['default']['BACKEND'], s.SESSION_ENGINE)"
    result = manage("shell", "-c", script, REDIS_URL="redis://127.0.0.1:6379/3")
    assert result.returncode == 0, result.stderr
    assert "django.core.cache.backends.redis.RedisCache otp_app.session_backends.db" in result.stdout


def test_sqlite_is_tuned_for_several_server_processes():
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("runs on the SQLite leg")
    options = settings.DATABASES["default"]["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE"
    assert options["timeout"] >= 5
    assert "journal_mode=WAL" in options["init_command"]


def test_with_debug_off_no_front_end_origin_is_trusted_by_default():
    script = "from django.conf import settings as s; print(repr(s.CORS_ALLOWED_ORIGINS), repr(s.TWOFA_TRUSTED_ORIGINS))"
    production = {key: value for key, value in PRODUCTION.items() if key != "CORS_ALLOWED_ORIGINS"}
    result = manage("shell", "-c", script, **production)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["[]", "[]"]


def test_with_debug_on_the_react_apps_development_origin_is_trusted():
    script = "from django.conf import settings as s; print(*s.CORS_ALLOWED_ORIGINS)"
    result = manage("shell", "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["http://localhost:3000"]
