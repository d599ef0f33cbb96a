"""WSGI entry point: `gunicorn otp_project.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

from otp_app.handlers import Utf8WSGIRequest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "otp_project.settings")

application = get_wsgi_application()
application.request_class = Utf8WSGIRequest
