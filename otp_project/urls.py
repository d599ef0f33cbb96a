from django.contrib import admin
from django.urls import include, path, re_path
from drf_yasg import openapi
from drf_yasg.views import get_schema_view
from rest_framework import permissions

from otp_app import pages
from otp_app.exceptions import not_found
from otp_app.openapi import SchemaGenerator
from otp_app.urls import documented
from otp_app.views import HealthView, metrics_view

schema_view = get_schema_view(
    openapi.Info(
        title="2FA API",
        default_version="v1",
        description=(
            "Two-factor authentication (TOTP codes and passkeys) over a session cookie. Flow: register → "
            "login → otp/generate → otp/verify (or passkeys/registration); later logins: login → "
            "otp/validate (or passkeys/authentication), or a passkey alone. See the README."
        ),
    ),
    public=True,
    permission_classes=[permissions.AllowAny],
    generator_class=SchemaGenerator,
    patterns=[path("api/auth/", include(documented)), path("healthz", HealthView.as_view())],
)

urlpatterns = [
    path("healthz", HealthView.as_view(), name="healthz"),
    path("metrics", metrics_view, name="metrics"),  # a 404 unless METRICS_ENABLED
    path("admin/", admin.site.urls),
    path("api/auth/", include("otp_app.urls")),
    re_path(r"^api/", not_found),  # unknown API paths answer JSON, also with DEBUG on
    re_path(r"^swagger\.(?P<format>json|yaml)$", schema_view.without_ui(cache_timeout=0), name="schema-json"),
    path("swagger/", schema_view.with_ui("swagger", cache_timeout=0), name="schema-swagger-ui"),
    path("redoc/", schema_view.with_ui("redoc", cache_timeout=0), name="schema-redoc"),
    path("demo/", pages.demo, name="demo"),
]

handler400 = "otp_app.exceptions.bad_request"
handler404 = "otp_app.exceptions.not_found"
handler500 = "otp_app.exceptions.server_error"
