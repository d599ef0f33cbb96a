"""The email-keyed user and the state its second factor needs.

Every rule about that state (single use, lockout, enrolment) lives in `services.py`; this
module only says what is stored and what the database itself guarantees.
"""

import unicodedata
import uuid
from importlib import import_module

import idna
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.contrib.sessions.base_session import AbstractBaseSession
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from . import rows


class InvalidEmailDomain(ValueError):
    """The domain of an email is no valid internationalised domain name."""


def normalise_email(email: str, *, strict: bool = False) -> str:
    """One spelling per mailbox, so that one mailbox is one account.

    " Ann@Example.COM ", "ａｎｎ@ｅｘａｍｐｌｅ.com" (fullwidth), "ann@ⓔxample.com" (circled) and
    "ann@ex\u00adample.com" (a soft hyphen) are all "ann@example.com": Unicode compatibility
    forms folded (NFKC), letter case folded, invisible format characters dropped from the local
    part, and the domain in its IDNA (UTS #46) form, kept in Unicode (U-label) as people read it.
    A domain IDNA refuses raises InvalidEmailDomain when `strict`, else stays as it was folded.
    """
    folded = unicodedata.normalize("NFKC", (email or "").strip()).lower()
    local, at, domain = folded.rpartition("@")
    if not at:
        return folded
    local = "".join(symbol for symbol in local if unicodedata.category(symbol) != "Cf")
    try:
        domain = idna.decode(idna.encode(domain, uts46=True))
    except idna.IDNAError as error:
        if strict:
            raise InvalidEmailDomain(str(error)) from error
    return f"{local}@{domain}"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, username):
        # Every login looks the account up: one plain statement (rows.py), not a compiled queryset.
        user = rows.first(self.model, ("email", "=", normalise_email(username)))
        if user is None:
            raise self.model.DoesNotExist
        return user

    def create_user(self, email, name, password=None, **extra_fields):
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=normalise_email(email), name=name, **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, name, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self.create_user(email, name, password, **extra_fields)


class UserModel(AbstractBaseUser, PermissionsMixin):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True, max_length=255)
    name = models.CharField(max_length=255)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    # Second factor. `otp_secret` is the secret in force; `pending_secret` is one handed out by
    # otp/generate and not yet proven by otp/verify, so re-enrolment never locks anyone out.
    # Both are stored encrypted (crypto.py), never as the base32 an app is given.
    otp_enabled = models.BooleanField(default=False)
    otp_verified = models.BooleanField(default=False)
    otp_secret = models.CharField(max_length=255, blank=True, default="")
    pending_secret = models.CharField(max_length=255, blank=True, default="")
    # Kept with the row (changed in the transaction that uses or replaces codes), so USER
    # needs no extra query.
    recovery_codes_left = models.PositiveSmallIntegerField(default=0)
    # RFC 6238 §5.2: a code is accepted once; any step at or before this one is refused.
    last_accepted_step = models.BigIntegerField(null=True, blank=True)
    # Consecutive wrong codes, and until when every attempt is refused unseen.
    failed_attempts = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    # Passkeys: how many the account has (kept in the transaction that adds or removes one, so
    # USER needs no extra query), and the random WebAuthn user handle they are made for, set
    # when the first one is added: neither the email nor the primary key, which must not leak.
    passkey_count = models.PositiveSmallIntegerField(default=0)
    webauthn_user_handle = models.CharField(max_length=86, null=True, blank=True, unique=True, editable=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        verbose_name = "user"
        verbose_name_plural = "users"
        constraints = [
            # The database, not a read-then-insert, keeps two spellings of one email apart.
            models.UniqueConstraint(Lower("email"), name="user_email_case_insensitive_unique"),
        ]

    def __str__(self):
        return self.email

    @property
    def two_factor_enabled(self) -> bool:
        """A second factor is on: TOTP, or at least one passkey. Logins are then pending."""
        return self.otp_enabled or self.passkey_count > 0

    def clean(self):
        # Forms (the admin's) check uniqueness after clean(): they must see the one spelling.
        super().clean()
        try:
            self.email = normalise_email(self.email, strict=True)
        except InvalidEmailDomain as error:
            raise ValidationError({"email": EmailValidator.message}) from error

    def save(self, *args, **kwargs):
        self.email = normalise_email(self.email)
        super().save(*args, **kwargs)


class RecoveryCode(models.Model):
    """A single-use code that stands in for a lost phone, stored only as a keyed hash."""

    user = models.ForeignKey(UserModel, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "code_hash"])]

    def __str__(self):
        return f"recovery code of {self.user_id} ({'used' if self.used_at else 'unused'})"


class Passkey(models.Model):
    """A WebAuthn credential of an account: its public key, never a secret."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(UserModel, on_delete=models.CASCADE, related_name="passkeys")
    # base64url without padding, as browsers send it; at most 1,023 bytes (WebAuthn Level 3).
    credential_id = models.CharField(max_length=1364, unique=True, editable=False)
    public_key = models.BinaryField(editable=False)  # the COSE key the authenticator gave
    sign_count = models.PositiveBigIntegerField(default=0, editable=False)
    # SHA-256 of the challenge it last answered: an answer is accepted once (services.py).
    last_challenge = models.CharField(max_length=64, blank=True, default="", editable=False)
    transports = models.JSONField(default=list, blank=True, editable=False)
    backed_up = models.BooleanField(default=False, editable=False)  # synced to other devices
    name = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["created_at"]

    def __str__(self):
        return self.name


class SecurityEvent(models.Model):
    """The audit trail: who did what to an account's security, from where. Never a secret."""

    class Kind(models.TextChoices):
        REGISTERED = "registered", "registered"
        LOGIN_SUCCEEDED = "login_succeeded", "login succeeded"
        LOGIN_FAILED = "login_failed", "login failed"
        LOCKED_OUT = "locked_out", "locked out after wrong codes"
        CODES_LOCKED = "codes_locked", "authenticator codes locked until a recovery code or an unlock"
        OTP_ENABLED = "otp_enabled", "2FA enabled"
        OTP_DISABLED = "otp_disabled", "2FA disabled"
        SECRET_REENROLLED = "secret_reenrolled", "secret re-enrolled"
        RECOVERY_CODE_USED = "recovery_code_used", "recovery code used"
        RECOVERY_CODES_REGENERATED = "recovery_codes_regenerated", "recovery codes regenerated"
        OTP_RESET_BY_ADMIN = "otp_reset_by_admin", "2FA reset by an administrator"
        PASSKEY_ADDED = "passkey_added", "passkey added"
        PASSKEY_REMOVED = "passkey_removed", "passkey removed"
        PASSKEY_USED = "passkey_used", "passkey used"
        PASSKEY_REFUSED = "passkey_refused", "passkey refused"
        PASSWORD_CHANGED = "password_changed", "password changed"
        SESSIONS_ENDED = "sessions_ended", "sessions ended by their owner"

    kind = models.CharField(max_length=40, choices=Kind.choices, db_index=True)
    user = models.ForeignKey(
        UserModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="security_events"
    )
    # The email as given, also when no account has it (failed logins), and after a deletion.
    email = models.CharField(max_length=255, blank=True, default="", db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)
    # The X-Request-ID of the request (middleware.RequestIdMiddleware), to find its log lines.
    request_id = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.email or '-'}"


class LoginAttempts(models.Model):
    """Failed logins counted against one limit in one window, under django-ratelimit's key for
    them, when no Redis is configured (throttles.py): one row per key, counted by single
    statements, deleted some time after its window ended."""

    key = models.CharField(max_length=255, primary_key=True)
    attempts = models.PositiveIntegerField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name_plural = "login attempts"

    def __str__(self):
        return f"{self.attempts} attempts until {self.expires_at:%Y-%m-%d %H:%M:%S}"


class Session(AbstractBaseSession):
    """A session, with the account it belongs to (pending or full) as a column: reading a
    session reads its account in the same statement (session_backends), and deleting an
    account deletes its sessions."""

    # No constraint in the database: a session saved by a request still running when its account
    # was deleted must not fail; it names no account any more, and reads as no login.
    user = models.ForeignKey(
        UserModel, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    # What its owner sees of it (GET sessions), written with the row, never on every request. The
    # public id names the session and opens nothing: it is neither the key nor a hash of it.
    public_id = models.CharField(max_length=32, unique=True, null=True, blank=True, editable=False)
    full = models.BooleanField(default=False, editable=False)  # a full session; else pending, or no account
    created_at = models.DateTimeField(null=True, editable=False)
    last_active_at = models.DateTimeField(null=True, editable=False)  # refreshed at most once a minute
    ip = models.GenericIPAddressField(null=True, editable=False)
    user_agent = models.CharField(max_length=255, blank=True, default="", editable=False)

    def __str__(self):
        return self.public_id or "session"

    @classmethod
    def get_session_store_class(cls):
        # The store of SESSION_ENGINE, looked up rather than imported: it imports this module.
        return import_module(settings.SESSION_ENGINE).SessionStore
