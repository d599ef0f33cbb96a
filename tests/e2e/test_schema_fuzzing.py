"""The OpenAPI schema tells the truth: a schema-driven fuzzer (schemathesis) finds no server error
and no answer that breaks it on a real server, with and without a session."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.http_client import Account

pytestmark = pytest.mark.e2e

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance"


def fuzz(url: str, *extra: str) -> subprocess.CompletedProcess:
    schemathesis = Path(sys.executable).with_name("schemathesis")
    return subprocess.run(
        [
            str(schemathesis),
            "run",
            url + "/swagger.json",
            "--checks",
            CHECKS,
            # One worker: hypothesis describing strategies from several threads at once can trip
            # CPython 3.11's AST recursion check ("AST constructor recursion depth mismatch").
            "--max-examples",
            "25",
            "--workers",
            "1",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_fuzzing_without_a_session_finds_nothing(live_server_url):
    result = fuzz(live_server_url)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


def test_fuzzing_with_a_full_session_finds_nothing(live_server_url):
    account = Account(live_server_url)
    assert account.register().status_code == 201
    assert account.login().status_code == 200
    cookie = account.http.cookies["sessionid"]
    # logout would end the session the rest of the run needs.
    result = fuzz(live_server_url, "--header", f"Cookie: sessionid={cookie}", "--exclude-path", "/api/auth/logout")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
