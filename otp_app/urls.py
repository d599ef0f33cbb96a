from django.urls import re_path

from . import views
from .exceptions import not_found

# Paths match with or without a trailing slash: a POST redirected to add one would lose its body.
urlpatterns = [
    re_path(r"^register/?$", views.RegisterView.as_view(), name="register"),
    re_path(r"^login/?$", views.LoginView.as_view(), name="login"),
    re_path(r"^logout/?$", views.LogoutView.as_view(), name="logout"),
    re_path(r"^me/?$", views.MeView.as_view(), name="me"),
    re_path(r"^otp/generate/?$", views.GenerateOtpView.as_view(), name="otp-generate"),
    re_path(r"^otp/verify/?$", views.VerifyOtpView.as_view(), name="otp-verify"),
    re_path(r"^otp/validate/?$", views.ValidateOtpView.as_view(), name="otp-validate"),
    re_path(r"^otp/disable/?$", views.DisableOtpView.as_view(), name="otp-disable"),
]
