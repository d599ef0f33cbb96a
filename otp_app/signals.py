"""One Django signal per kind of security event, sent after the event is recorded.

Connect a receiver to tell people what happened to their account, without touching this app:

    from otp_app import signals

    @receiver(signals.otp_disabled)
    def warn(sender, event, user, request, **kwargs):
        send_mail("2FA was turned off on your account", ..., [event.email])

Every signal sends `event` (the SecurityEvent row), `user` (or None) and `request`.
"""

from django.dispatch import Signal

from .models import SecurityEvent

Kind = SecurityEvent.Kind

registered = Signal()
login_succeeded = Signal()
login_failed = Signal()
locked_out = Signal()
codes_locked = Signal()
otp_enabled = Signal()
otp_disabled = Signal()
secret_reenrolled = Signal()
recovery_code_used = Signal()
recovery_codes_regenerated = Signal()
otp_reset_by_admin = Signal()
passkey_added = Signal()
passkey_removed = Signal()
passkey_used = Signal()
passkey_refused = Signal()
password_changed = Signal()
sessions_ended = Signal()

BY_KIND = {
    Kind.REGISTERED: registered,
    Kind.LOGIN_SUCCEEDED: login_succeeded,
    Kind.LOGIN_FAILED: login_failed,
    Kind.LOCKED_OUT: locked_out,
    Kind.CODES_LOCKED: codes_locked,
    Kind.OTP_ENABLED: otp_enabled,
    Kind.OTP_DISABLED: otp_disabled,
    Kind.SECRET_REENROLLED: secret_reenrolled,
    Kind.RECOVERY_CODE_USED: recovery_code_used,
    Kind.RECOVERY_CODES_REGENERATED: recovery_codes_regenerated,
    Kind.OTP_RESET_BY_ADMIN: otp_reset_by_admin,
    Kind.PASSKEY_ADDED: passkey_added,
    Kind.PASSKEY_REMOVED: passkey_removed,
    Kind.PASSKEY_USED: passkey_used,
    Kind.PASSKEY_REFUSED: passkey_refused,
    Kind.PASSWORD_CHANGED: password_changed,
    Kind.SESSIONS_ENDED: sessions_ended,
}
