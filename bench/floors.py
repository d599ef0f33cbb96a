"""The floor views: the cheapest requests this stack answers, served by the same workers,
middleware and database as the API, so an endpoint's distance from its floor is what its own
code costs (the raw WSGI floor is in bench/wsgi.py)."""

import uuid
from functools import lru_cache

from django.contrib.auth.hashers import check_password, make_password
from django.http import Http404
from rest_framework.response import Response
from rest_framework.views import APIView

from otp_app.models import UserModel
from otp_app.views import MeView

PASSWORD = "bench: correct horse battery staple"


class Constant(APIView):
    """Django's middleware and DRF, no database."""

    authentication_classes = []
    permission_classes = []

    def get(self, request):
        return Response({"status": "ok"})


def _read_row(request) -> dict:
    try:
        pk = uuid.UUID(request.query_params.get("id", ""))
        user = UserModel.objects.get(pk=pk)
    except (ValueError, UserModel.DoesNotExist):
        raise Http404 from None
    return {"id": str(user.pk), "email": user.email}


class OneRow(APIView):
    """The same plus one indexed query, through the ORM."""

    authentication_classes = []
    permission_classes = []

    def get(self, request):
        return Response(_read_row(request))


class OneRowBehindSession(APIView):
    # The API's default authentication (its session cookie) and GET me's permission rule.
    permission_classes = MeView.permission_classes

    def get(self, request):
        return Response(_read_row(request))


@lru_cache(maxsize=1)
def _stored_hash() -> str:
    return make_password(PASSWORD)  # the configured (first) hasher, once per worker


class PasswordHashOnly(APIView):
    """One password check with the configured hasher: the hasher's cost inside the server, next
    to its cost alone (bench/inprocess.py)."""

    authentication_classes = []
    permission_classes = []

    def get(self, request):
        return Response({"status": "ok", "match": check_password(PASSWORD, _stored_hash())})
