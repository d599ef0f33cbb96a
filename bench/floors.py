"""Floors: the cheapest requests this stack can answer, to measure the API against.

Each is served by the same gunicorn workers, middleware and database as the API, so the
difference between an endpoint and its floor is what the endpoint's own code costs:
- raw WSGI: a JSON constant, before Django (what gunicorn and HTTP cost; bench/wsgi.py);
- a bare DRF APIView returning a constant (Django's middleware and DRF, no database);
- a DRF APIView reading one row by primary key (the same plus one indexed query);
- the same behind a session (the API's own session authentication and full-session rule);
- one password check with the configured hasher behind a bare APIView (the hasher's cost in
  the server, next to its cost alone measured by bench/inprocess.py).
"""

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
    authentication_classes = []
    permission_classes = []

    def get(self, request):
        return Response({"status": "ok", "match": check_password(PASSWORD, _stored_hash())})
