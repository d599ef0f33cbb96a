"""The Postman collection (postman/), run by newman against a live server.

The collection is what people import into Postman or Insomnia: it must run the whole flow with
one click, from a fresh account each time, and its tests must fail the run when the API breaks
what it documents. newman is pinned in postman/package-lock.json; without Node.js these tests are
skipped, except in CI, where they must run.
"""

import json
import shutil
import subprocess

import pytest

from tests.support import prerequisites
from tests.support.server import ROOT

pytestmark = pytest.mark.e2e

POSTMAN = ROOT / "postman"
COLLECTION = POSTMAN / "2fa-api.postman_collection.json"
NEWMAN = POSTMAN / "node_modules" / ".bin" / "newman"


def collection() -> dict:
    return json.loads(COLLECTION.read_text())


def requests_of(items: list) -> list[dict]:
    return [leaf for item in items for leaf in (requests_of(item["item"]) if "item" in item else [item])]


def scripts(item: dict, listen: str) -> str:
    return "\n".join("\n".join(event["script"]["exec"]) for event in item.get("event", []) if event["listen"] == listen)


@pytest.fixture(scope="module")
def newman() -> str:
    if shutil.which("node") is None:
        prerequisites.missing(prerequisites.NODE, "Node.js is not installed")
    if not NEWMAN.exists():
        if prerequisites.in_ci():
            pytest.fail("newman is missing: .ci/run must run `npm ci --prefix postman`", pytrace=False)
        npm = shutil.which("npm")
        assert npm, "npm is missing: install Node.js with npm, or run `npm ci --prefix postman`"
        subprocess.run([npm, "ci", "--prefix", str(POSTMAN), "--no-audit", "--no-fund"], check=True)
    return str(NEWMAN)


def run_newman(newman: str, base_url: str, report) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            newman,
            "run",
            str(COLLECTION),
            "--env-var",
            f"baseUrl={base_url}",
            "--color",
            "off",
            "--reporters",
            "cli,json",
            "--reporter-json-export",
            str(report),
            "--timeout-request",
            "30000",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_collection_is_v2_1_and_tests_every_response():
    data = collection()
    assert data["info"]["schema"] == "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
    variables = {variable["key"] for variable in data["variable"]}
    assert {"baseUrl", "email", "user_id", "base32"} <= variables
    items = requests_of(data["item"])
    assert len(items) >= 7
    for item in items:
        assert item["request"]["url"]["raw"].startswith("{{baseUrl}}/api/auth/"), item["name"]
        assert "pm.test(" in scripts(item, "test"), f"{item['name']} has no tests"
    # The authenticator app: TOTP from `base32` with the sandbox's CryptoJS, before each request.
    prerequest = scripts(data, "prerequest")
    assert "HmacSHA1" in prerequest and "base32" in prerequest


@pytest.mark.parametrize("run_number", [1, 2])
def test_newman_runs_the_whole_flow(newman, live_server_url, tmp_path, run_number):
    """Every request runs and passes its tests; run twice against the same server, the second
    run registers its own fresh account (no 409)."""
    result = run_newman(newman, live_server_url, tmp_path / "report.json")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]

    run = json.loads((tmp_path / "report.json").read_text())["run"]
    assert run["failures"] == []
    expected = [item["name"] for item in requests_of(collection()["item"])]
    assert [execution["item"]["name"] for execution in run["executions"]] == expected
    for execution in run["executions"]:
        assertions = execution.get("assertions", [])
        assert assertions, f"{execution['item']['name']}: no test ran"
        assert all("error" not in assertion for assertion in assertions), execution["item"]["name"]
    assert run["stats"]["assertions"]["failed"] == 0


def test_a_failed_test_fails_the_newman_run(newman, live_server_url, tmp_path):
    # Another server's answers (here: JSON 404s for every path) must turn the run red.
    result = run_newman(newman, live_server_url + "/api/not-here", tmp_path / "report.json")
    assert result.returncode != 0
    run = json.loads((tmp_path / "report.json").read_text())["run"]
    assert run["stats"]["assertions"]["failed"] > 0
