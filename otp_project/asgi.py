"""ASGI entry point, for servers that speak ASGI."""

import os

from django.core.asgi import get_asgi_application

from otp_app.handlers import Utf8ASGIRequest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "otp_project.settings")

application = get_asgi_application()
application.request_class = Utf8ASGIRequest
