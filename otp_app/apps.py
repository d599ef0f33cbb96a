from django.apps import AppConfig


class OtpAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "otp_app"
    verbose_name = "Two-factor authentication"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from . import metrics, notifications, services, signals

        # Django's own receiver saves the user through a compiled queryset on every login.
        user_logged_in.disconnect(dispatch_uid="update_last_login")
        user_logged_in.connect(services.update_last_login, dispatch_uid="update_last_login")
        for kind in metrics.COUNTED_EVENTS:
            signals.BY_KIND[kind].connect(metrics.count_event, dispatch_uid=f"metrics-{kind}")
        for kind in notifications.NOTIFIED:
            signals.BY_KIND[kind].connect(notifications.enqueue, dispatch_uid=f"notifications-{kind}")
