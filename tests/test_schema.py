"""The OpenAPI schema tells the truth: it is valid Swagger 2.0, and a schema-driven fuzzer
(schemathesis) finds no server error and no answer that breaks it, with and without a session."""
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import include, path
from drf_yasg import openapi
from drf_yasg.codecs import OpenAPICodecJson

from otp_app.openapi import SchemaGenerator
from otp_app.urls import documented
from tests.support.http_client import Account

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance"


def test_generated_schema_validates_as_swagger_2():
    generator = SchemaGenerator(
        info=openapi.Info(title="2FA API", default_version="v1"),
        patterns=[path("api/auth/", include(documented))],
    )
    schema = generator.get_schema(request=None, public=True)
    # drf-yasg's validation extra (swagger-spec-validator) raises on any violation.
    encoded = OpenAPICodecJson(validators=["ssv"]).encode(schema)
    assert b'"swagger": "2.0"' in encoded


def fuzz(url: str, *extra: str) -> subprocess.CompletedProcess:
    schemathesis = Path(sys.executable).with_name("schemathesis")
    return subprocess.run(
        [str(schemathesis), "run", url + "/swagger.json", "--checks", CHECKS,
         # One worker: hypothesis describing strategies from several threads at once can trip
         # CPython 3.11's AST recursion check ("AST constructor recursion depth mismatch").
         "--max-examples", "25", "--workers", "1", *extra],
        capture_output=True, text=True, timeout=600,
    )


@pytest.mark.e2e
def test_fuzzing_without_a_session_finds_nothing(live_server_url):
    result = fuzz(live_server_url)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


@pytest.mark.e2e
def test_fuzzing_with_a_full_session_finds_nothing(live_server_url):
    account = Account(live_server_url)
    assert account.register().status_code == 201
    assert account.login().status_code == 200
    cookie = account.http.cookies["sessionid"]
    # logout would end the session the rest of the run needs.
    result = fuzz(live_server_url, "--header", f"Cookie: sessionid={cookie}", "--exclude-path", "/api/auth/logout")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
