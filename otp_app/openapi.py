"""The description of the API: the OpenAPI (Swagger 2.0) schema served by drf-yasg, and the
answer to OPTIONS.

Each view documents its own body and answers; this module adds what every endpoint can answer
(405, and for POSTs 400, 403, 413, 415; 503 during outages), the 403 of TWOFA_REQUIRED where it
applies, says which endpoints need the session cookie, and lists paths in full as clients call them.
"""

from drf_yasg import openapi
from drf_yasg.generators import OpenAPISchemaGenerator
from drf_yasg.inspectors import SwaggerAutoSchema
from rest_framework.metadata import SimpleMetadata

from . import permissions
from .serializers import FailSerializer


def fail(description: str) -> openapi.Response:
    return openapi.Response(description, FailSerializer)


NO_SESSION = fail("No session: log in first")
FOREIGN_ORIGIN = fail("Cross-site request refused: this origin is not allowed")
PENDING_SESSION = fail("Pending session (second factor not yet proven), foreign Origin, or a user_id that is not yours")
BAD_INPUT = fail("Invalid body: malformed JSON, missing or wrong fields; `errors` lists them")
WRONG_CODE = fail("Token is invalid or user doesn't exist (wrong, expired or already used code)")
LOCKED = fail("Too many wrong codes: locked, see the Retry-After header")
NOT_ENROLLED = fail("OTP must be verified first")

_EVERY_ENDPOINT = {
    "405": fail("Method not allowed"),
    "503": fail("Database or cache unreachable; see the Retry-After header"),
}
_EVERY_POST = {
    "400": BAD_INPUT,
    "403": FOREIGN_ORIGIN,
    "413": fail("Request body is too large"),
    "415": fail("Unsupported media type: send Content-Type: application/json"),
}
_SESSION_PERMISSIONS = (permissions.FullSession, permissions.PendingOrFullSession)
_NOT_ENROLLED_YET = f"With TWOFA_REQUIRED, an account without a second factor: {permissions.ENROLMENT_REQUIRED}"


class AutoSchema(SwaggerAutoSchema):
    def get_response_serializers(self):
        responses = super().get_response_serializers()
        common = {**_EVERY_ENDPOINT, **(_EVERY_POST if self.method == "POST" else {})}
        for status_code, response in common.items():
            responses.setdefault(status_code, response)
        if self._needs_session():
            responses.setdefault("401", NO_SESSION)
        if self._refused_before_enrolment():
            refused = responses.get("403")
            also = f"{refused.description}. " if isinstance(refused, openapi.Response) else ""
            responses["403"] = fail(also + _NOT_ENROLLED_YET)
        return dict(sorted(responses.items()))

    def get_security(self):
        # The session cookie for endpoints that need one; none for register, login, logout.
        return [{"session": []}] if self._needs_session() else []

    def _needs_session(self) -> bool:
        return any(permission in _SESSION_PERMISSIONS for permission in self.view.permission_classes)

    def _refused_before_enrolment(self) -> bool:
        return permissions.SecondFactorEnrolled in self.view.permission_classes and not getattr(
            self.view, "allowed_before_enrolment", False
        )


class SchemaGenerator(OpenAPISchemaGenerator):
    def determine_path_prefix(self, paths):
        return "/"  # full paths (/api/auth/login), as clients call them


class Metadata(SimpleMetadata):
    """OPTIONS answers name, description and media types; the fields are in the schema.

    DRF's default would build each view's serializer, and fail on views that take no body.
    """

    def determine_actions(self, request, view):
        return {}

    def determine_metadata(self, request, view):
        metadata = super().determine_metadata(request, view)
        metadata.pop("actions", None)
        return metadata
