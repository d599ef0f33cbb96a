"""The OpenAPI schema is valid Swagger 2.0 (that a real server keeps to it: tests/e2e/test_schema_fuzzing.py;
what it documents: tests/api/test_docs.py)."""

from django.urls import include, path
from drf_yasg import openapi
from drf_yasg.codecs import OpenAPICodecJson

from otp_app.openapi import SchemaGenerator
from otp_app.urls import documented


def test_generated_schema_validates_as_swagger_2():
    generator = SchemaGenerator(
        info=openapi.Info(title="2FA API", default_version="v1"),
        patterns=[path("api/auth/", include(documented))],
    )
    schema = generator.get_schema(request=None, public=True)
    # drf-yasg's validation extra (swagger-spec-validator) raises on any violation.
    encoded = OpenAPICodecJson(validators=["ssv"]).encode(schema)
    assert b'"swagger": "2.0"' in encoded
