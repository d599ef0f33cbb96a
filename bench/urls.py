"""The project's URLconf with the benchmark's floor views appended under /bench/."""

from django.urls import path

from otp_project import urls as project

from . import floors

urlpatterns = project.urlpatterns + [
    path("bench/constant", floors.Constant.as_view()),
    path("bench/row", floors.OneRow.as_view()),
    path("bench/session-row", floors.OneRowBehindSession.as_view()),
    path("bench/hash", floors.PasswordHashOnly.as_view()),
]

handler400 = getattr(project, "handler400", "django.views.defaults.bad_request")
handler404 = getattr(project, "handler404", "django.views.defaults.page_not_found")
handler500 = getattr(project, "handler500", "django.views.defaults.server_error")
