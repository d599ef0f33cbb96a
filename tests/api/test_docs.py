"""The documentation: Swagger UI, ReDoc and the schema, and what the schema says.

Clients read the schema to learn the API, so it must list every path with its method, the
request fields each POST takes, and the error statuses each endpoint can answer.
"""

import re
import uuid

import pytest
import yaml

from tests.helpers import USER_KEYS

SCHEMA_PATHS = {
    # path (as clients call it) -> method
    "/api/auth/register": "post",
    "/api/auth/login": "post",
    "/api/auth/logout": "post",
    "/api/auth/me": "get",
    "/api/auth/sessions": "get",
    "/api/auth/sessions/end-others": "post",
    "/api/auth/sessions/{session_id}": "delete",
    "/api/auth/password": "post",
    "/api/auth/otp/generate": "post",
    "/api/auth/otp/verify": "post",
    "/api/auth/otp/validate": "post",
    "/api/auth/otp/disable": "post",
    "/api/auth/otp/recovery-codes": "post",
    "/api/auth/passkeys": "get",
    "/api/auth/passkeys/{passkey_id}": "patch",
    "/api/auth/passkeys/registration/options": "post",
    "/api/auth/passkeys/registration": "post",
    "/api/auth/passkeys/authentication/options": "post",
    "/api/auth/passkeys/authentication": "post",
    "/healthz": "get",
}
# Paths with a second method (the tests below read the first one's operation).
MORE_METHODS = {"/api/auth/passkeys/{passkey_id}": {"delete"}}

REQUEST_FIELDS = {
    # path -> (all fields, required fields)
    "/api/auth/register": ({"email", "name", "password", "passwordConfirm"}, {"email", "name", "password"}),
    "/api/auth/login": ({"email", "password"}, {"email", "password"}),
    "/api/auth/otp/generate": ({"user_id", "email", "token"}, set()),
    "/api/auth/otp/verify": ({"user_id", "token"}, {"token"}),
    "/api/auth/otp/validate": ({"user_id", "token"}, {"token"}),
    "/api/auth/otp/disable": ({"user_id", "token"}, set()),
    "/api/auth/otp/recovery-codes": ({"user_id", "token"}, {"token"}),
    "/api/auth/passkeys/registration": ({"credential", "name"}, {"credential"}),
    "/api/auth/passkeys/authentication": ({"credential"}, {"credential"}),
    "/api/auth/password": ({"current_password", "new_password", "token"}, {"current_password", "new_password"}),
}

# Every status each endpoint can answer; 403 on a POST is at least the refusal of a foreign
# origin, which every POST endpoint gives.
RESPONSES = {
    "/api/auth/register": {201, 400, 403, 409, 429},
    "/api/auth/login": {200, 400, 403, 429},
    "/api/auth/logout": {200, 403},
    "/api/auth/me": {200, 401, 403},
    "/api/auth/sessions": {200, 401, 403},
    "/api/auth/sessions/end-others": {200, 401, 403},
    "/api/auth/sessions/{session_id}": {200, 401, 403, 404},
    "/api/auth/password": {200, 400, 401, 403, 429},
    "/api/auth/otp/generate": {200, 400, 401, 403, 429},
    "/api/auth/otp/verify": {200, 400, 401, 403, 429},
    "/api/auth/otp/validate": {200, 400, 401, 403, 404, 429},
    "/api/auth/otp/disable": {200, 400, 401, 403, 429},
    "/api/auth/otp/recovery-codes": {200, 400, 401, 403, 404, 429},
    "/api/auth/passkeys": {200, 401, 403},
    "/api/auth/passkeys/{passkey_id}": {200, 400, 401, 403, 404},
    "/api/auth/passkeys/registration/options": {200, 401, 403},
    "/api/auth/passkeys/registration": {201, 400, 401, 403, 409},
    "/api/auth/passkeys/authentication/options": {200, 403, 404, 429},
    "/api/auth/passkeys/authentication": {200, 400, 403, 429},
    "/healthz": {200, 503},
}

SUCCESS_FIELDS = {
    # path -> (status, fields of the success body)
    "/api/auth/register": ("201", {"status", "message"}),
    "/api/auth/login": ("200", {"status", "user"}),
    "/api/auth/me": ("200", {"status", "user", "session"}),
    "/api/auth/otp/generate": ("200", {"base32", "otpauth_url", "qr_code"}),
    "/api/auth/otp/verify": ("200", {"otp_verified", "user", "recovery_codes"}),
    "/api/auth/otp/validate": ("200", {"otp_valid"}),
    "/api/auth/otp/disable": ("200", {"otp_disabled", "user"}),
    "/api/auth/otp/recovery-codes": ("200", {"status", "recovery_codes"}),
    "/api/auth/passkeys": ("200", {"status", "passkeys"}),
    "/api/auth/passkeys/{passkey_id}": ("200", {"status", "passkey"}),
    "/api/auth/passkeys/registration/options": ("200", {"publicKey"}),
    "/api/auth/passkeys/registration": ("201", {"status", "passkey", "user", "recovery_codes"}),
    "/api/auth/passkeys/authentication/options": ("200", {"publicKey"}),
    "/api/auth/passkeys/authentication": ("200", {"status", "user"}),
}


@pytest.fixture
def schema(api, db):
    response = api.get("/swagger.json")
    assert response.status_code == 200
    return response.json()


def documented_paths(schema) -> dict:
    """Schema path -> path item, with the basePath put back in front."""
    base = schema.get("basePath", "").rstrip("/")  # "/api/auth" or "/", whichever drf-yasg picks
    return {base + path: item for path, item in schema["paths"].items()}


def find(schema, path: str) -> dict:
    """The path item documenting `path`, whether the schema spells it with a trailing slash or not."""
    matches = [item for documented, item in documented_paths(schema).items() if documented.rstrip("/") == path]
    assert len(matches) == 1, (path, sorted(documented_paths(schema)))
    return matches[0]


def resolve(schema, node: dict) -> dict:
    while "$ref" in node:
        name = node["$ref"].removeprefix("#/definitions/")
        node = schema["definitions"][name]
    return node


def request_body(schema, path: str) -> dict:
    operation = find(schema, path)["post"]
    bodies = [parameter for parameter in operation.get("parameters", []) if parameter["in"] == "body"]
    assert len(bodies) == 1, operation.get("parameters")
    return resolve(schema, bodies[0]["schema"])


# --- The pages -----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/swagger/", "/redoc/"])
def test_documentation_page_is_html(api, db, url):
    response = api.get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"<html" in response.content.lower()


def test_swagger_json_is_the_schema(api, db):
    response = api.get("/swagger.json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    schema = response.json()
    assert schema["swagger"] == "2.0"
    assert schema["info"]["title"]


def test_swagger_yaml_is_the_same_schema(api, db, schema):
    response = api.get("/swagger.yaml")
    assert response.status_code == 200
    assert "yaml" in response["Content-Type"]
    as_yaml = yaml.safe_load(response.content)
    assert as_yaml["paths"].keys() == schema["paths"].keys()
    assert as_yaml["definitions"].keys() == schema["definitions"].keys()


def test_documentation_needs_no_session(api, db):
    for url in ["/swagger/", "/redoc/", "/swagger.json", "/swagger.yaml"]:
        assert api.get(url).status_code == 200, url


# --- Paths and methods ---------------------------------------------------------------------------


def test_schema_lists_exactly_the_api_paths_as_clients_call_them(schema):
    # The React app calls the paths with no trailing slash; so does the schema.
    assert set(documented_paths(schema)) == set(SCHEMA_PATHS)


def test_schema_paths_are_plain_paths_not_regexes(schema):
    # The schema must not show regex characters ("^", "?", "$", "\") or a trailing slash.
    for path in documented_paths(schema):
        assert re.fullmatch(r"(/[a-z-]+|/\{[a-z_]+\})+", path), path


@pytest.mark.parametrize("path, method", SCHEMA_PATHS.items())
def test_each_path_documents_its_method_only(schema, path, method):
    methods = {key for key in find(schema, path) if key != "parameters"}
    assert methods == {method, *MORE_METHODS.get(path, ())}


@pytest.mark.parametrize("path, method", SCHEMA_PATHS.items())
def test_documented_path_is_served(api, db, schema, path, method):
    # What Swagger UI's "Try it out" calls, spelled exactly as the schema spells it.
    documented = next(p for p in documented_paths(schema) if p.rstrip("/") == path)
    documented = documented.replace("{passkey_id}", str(uuid.uuid4()))
    response = getattr(api, method)(documented, {}, format="json")
    assert response.status_code not in (301, 302, 404, 405), (documented, response.status_code)


# --- Request bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize("path, fields", REQUEST_FIELDS.items())
def test_post_endpoint_documents_its_own_request_fields(schema, path, fields):
    all_fields, required = fields
    body = request_body(schema, path)
    assert set(body["properties"]) == all_fields
    assert set(body.get("required", [])) == required


def test_user_id_is_documented_as_a_uuid(schema):
    for path in ["/api/auth/otp/generate", "/api/auth/otp/verify", "/api/auth/otp/validate", "/api/auth/otp/disable"]:
        assert request_body(schema, path)["properties"]["user_id"]["format"] == "uuid", path


@pytest.mark.parametrize("path", ["/api/auth/logout", "/api/auth/me"])
def test_endpoint_without_input_documents_no_body(schema, path):
    for operation in (value for key, value in find(schema, path).items() if key != "parameters"):
        assert not [p for p in operation.get("parameters", []) if p["in"] == "body"]


# --- Responses -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path, statuses", RESPONSES.items())
def test_endpoint_documents_its_success_and_error_statuses(schema, path, statuses):
    item = find(schema, path)
    operation = item[SCHEMA_PATHS[path]]
    documented = {int(status) for status in operation["responses"]}
    missing = statuses - documented
    assert not missing, f"{path} does not document {sorted(missing)}"


@pytest.mark.parametrize("path", SCHEMA_PATHS)
def test_documented_errors_have_the_fail_envelope(schema, path):
    operation = find(schema, path)[SCHEMA_PATHS[path]]
    for status, response in operation["responses"].items():
        if int(status) < 400:
            continue
        body = resolve(schema, response["schema"])
        assert {"status", "message"} <= set(body["properties"]), (path, status)
        assert body["properties"]["message"]["type"] == "string", (path, status)
        assert response.get("description"), (path, status)


@pytest.mark.parametrize("path, success", SUCCESS_FIELDS.items())
def test_success_response_documents_its_body_fields(schema, path, success):
    status, fields = success
    operation = find(schema, path)[SCHEMA_PATHS[path]]
    body = resolve(schema, operation["responses"][status]["schema"])
    assert set(body["properties"]) == fields
    if "user" in fields:
        assert set(resolve(schema, body["properties"]["user"])["properties"]) == USER_KEYS


def test_no_documented_response_contains_a_secret_except_generate(schema):
    # As documented, only otp/generate answers with base32 / otpauth_url.
    for path in SCHEMA_PATHS:
        if path == "/api/auth/otp/generate":
            continue
        operation = find(schema, path)[SCHEMA_PATHS[path]]
        for status, response in operation["responses"].items():
            if "schema" not in response:
                continue
            text = repr(resolve(schema, response["schema"])) + repr(schema["definitions"].get("User", {}))
            for secret_field in ("base32", "otpauth_url", "otp_secret", "pending_secret"):
                assert secret_field not in text, (path, status, secret_field)


@pytest.mark.parametrize(
    "definition, field",
    [("WebAuthnOptions", "publicKey"), ("PasskeyRegistration", "credential"), ("PasskeyAuthentication", "credential")],
)
def test_webauthn_json_is_documented_as_any_object(schema, definition, field):
    # WebAuthn's options and credentials nest objects, numbers and lists: "an object of strings"
    # would make every real answer violate the schema.
    documented = schema["definitions"][definition]["properties"][field]
    assert documented["type"] == "object"
    assert documented["additionalProperties"] is True
