from django.apps import AppConfig


class OtpAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "otp_app"
    verbose_name = "Two-factor authentication"
