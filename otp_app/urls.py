from django.urls import path

from . import metrics, views

ENDPOINTS = [
    ("register", views.RegisterView, "register"),
    ("login", views.LoginView, "login"),
    ("logout", views.LogoutView, "logout"),
    ("me", views.MeView, "me"),
    ("sessions", views.SessionListView, "sessions"),
    ("sessions/end-others", views.EndOtherSessionsView, "sessions-end-others"),
    ("sessions/<str:session_id>", views.SessionDetailView, "session"),
    ("password", views.PasswordView, "password"),
    ("otp/generate", views.GenerateOtpView, "otp-generate"),
    ("otp/verify", views.VerifyOtpView, "otp-verify"),
    ("otp/validate", views.ValidateOtpView, "otp-validate"),
    ("otp/disable", views.DisableOtpView, "otp-disable"),
    ("otp/recovery-codes", views.RecoveryCodesView, "otp-recovery-codes"),
    ("passkeys", views.PasskeyListView, "passkeys"),
    ("passkeys/<uuid:passkey_id>", views.PasskeyDetailView, "passkey"),
    ("passkeys/registration/options", views.PasskeyRegistrationOptionsView, "passkey-registration-options"),
    ("passkeys/registration", views.PasskeyRegistrationView, "passkey-registration"),
    ("passkeys/authentication/options", views.PasskeyAuthenticationOptionsView, "passkey-authentication-options"),
    ("passkeys/authentication", views.PasskeyAuthenticationView, "passkey-authentication"),
]

metrics.ENDPOINT_NAMES.update({view: name for _route, view, name in ENDPOINTS})

# The documented paths have no trailing slash.
documented = [path(route, view.as_view(), name=name) for route, view, name in ENDPOINTS]

# A trailing slash is forgiven rather than redirected: a redirected POST would lose its body.
urlpatterns = documented + [path(f"{route}/", view.as_view()) for route, view, _ in ENDPOINTS]
