"""Request validation and response shapes of the API; no business rules."""

import functools
from datetime import UTC

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from .models import InvalidEmailDomain, Passkey, UserModel, normalise_email


class StringOnly:
    """JSON strings only: DRF would read 42 as "42", and 5 or true as a UUID."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class Text(StringOnly, serializers.CharField):
    pass


class Email(StringOnly, serializers.EmailField):
    """An address in its one spelling (models.normalise_email), folded before it is validated."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return normalise_email(value, strict=True)
        except InvalidEmailDomain:
            self.fail("invalid")


class Uuid(StringOnly, serializers.UUIDField):
    pass


def validated_data(serializer_class: type[serializers.Serializer], data) -> dict:
    """`data` validated by `serializer_class`, or the ValidationError that `is_valid` raises.

    A valid body is checked by one long-lived instance per class: building a serializer (and
    deep-copying its fields) for every request cost about as much as the rest of a wrong code's
    refusal. Validation keeps no state on the instance, and none of these serializers reads its
    context. Anything invalid goes through a fresh serializer's `is_valid`, so every error reads
    exactly as DRF words it.
    """
    try:
        return _shared(serializer_class).run_validation(data)
    except serializers.ValidationError:
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


@functools.cache
def _shared(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    return serializer_class()


class UserSerializer(serializers.ModelSerializer):
    """USER: the only view of an account the API gives. No secret is, or may be, listed here."""

    passkeys = serializers.IntegerField(source="passkey_count", help_text="How many passkeys the account has.")
    two_factor_enabled = serializers.BooleanField(
        help_text="A second factor is on (TOTP or a passkey): logins are pending until it is proven."
    )

    class Meta:
        model = UserModel
        fields = [
            "id",
            "name",
            "email",
            "otp_enabled",
            "otp_verified",
            "recovery_codes_left",
            "passkeys",
            "two_factor_enabled",
        ]
        read_only_fields = fields

    def to_representation(self, user):
        # The values the fields would give, without building the fields again for every answer
        # (most answers carry USER). The fields themselves still describe USER in the schema.
        return {
            "id": str(user.pk),
            "name": user.name,
            "email": user.email,
            "otp_enabled": user.otp_enabled,
            "otp_verified": user.otp_verified,
            "recovery_codes_left": user.recovery_codes_left,
            "passkeys": user.passkey_count,
            "two_factor_enabled": user.two_factor_enabled,
        }


class PasskeySerializer(serializers.ModelSerializer):
    """PASSKEY: what the account's owner sees of a passkey; never its key or credential id."""

    class Meta:
        model = Passkey
        fields = ["id", "name", "created_at", "last_used_at", "backed_up"]
        read_only_fields = fields


class RegisterSerializer(serializers.Serializer):
    email = Email(max_length=255)
    name = Text(max_length=255)
    password = Text(max_length=128, trim_whitespace=False, style={"input_type": "password"})
    passwordConfirm = Text(
        max_length=128,
        trim_whitespace=False,
        required=False,
        style={"input_type": "password"},
        help_text="Optional; when sent it must equal `password`.",
    )

    def validate(self, attrs):
        confirm = attrs.pop("passwordConfirm", None)
        if confirm is not None and confirm != attrs["password"]:
            raise serializers.ValidationError({"passwordConfirm": ["Passwords do not match"]})
        check_password_rules(attrs["password"], user=UserModel(email=attrs["email"], name=attrs["name"]))
        return attrs


def check_password_rules(password: str, *, user: UserModel, field: str = "password") -> None:
    """Django's password validators (AUTH_PASSWORD_VALIDATORS) for `user`: a 400 naming `field`."""
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as error:
        raise serializers.ValidationError({field: list(error.messages)}) from error


class LoginSerializer(serializers.Serializer):
    # Not an EmailField: a malformed address is simply an unknown one, "Incorrect email or password".
    email = Text(max_length=255)
    password = Text(max_length=128, trim_whitespace=False, style={"input_type": "password"})


class UserIdSerializer(serializers.Serializer):
    user_id = Uuid(
        required=False,
        allow_null=True,
        help_text="Optional. When sent, it must be the logged-in account's id (403 otherwise).",
    )


class GenerateSerializer(UserIdSerializer):
    email = Text(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=255,
        help_text="Ignored: the otpauth label is always the account's own email.",
    )
    token = Text(
        max_length=64,
        required=False,
        help_text="With 2FA on: a current code of the authenticator in force. Needed only when the "
        "second factor was not proven in this session within the last TWOFA_REAUTH_SECONDS (15 minutes).",
    )


class TokenSerializer(UserIdSerializer):
    token = Text(
        max_length=64,
        help_text="The 6-digit code the authenticator app shows (otp/validate also takes a recovery code).",
    )


class DisableSerializer(UserIdSerializer):
    token = Text(
        max_length=64,
        required=False,
        help_text="A current code. Needed only when the second factor was not proven in this "
        "session within the last TWOFA_REAUTH_SECONDS (15 minutes).",
    )


class WebAuthnJson(serializers.DictField):
    """A JSON object of WebAuthn's (options, or a browser's `credential.toJSON()`), of any members:
    the WebAuthn library checks them, so the schema says only "an object"."""

    class Meta:
        swagger_schema_fields = {"type": "object", "additionalProperties": True}


PASSKEY_NAME = {"max_length": 64, "trim_whitespace": True}


class PasskeyRegistrationSerializer(serializers.Serializer):
    credential = WebAuthnJson(help_text="RegistrationResponseJSON: what `credential.toJSON()` gives after create().")
    name = Text(
        required=False,
        allow_blank=True,
        help_text='A name to tell it apart ("Laptop"); default "Passkey N".',
        **PASSKEY_NAME,
    )


class PasskeyAuthenticationSerializer(serializers.Serializer):
    credential = WebAuthnJson(help_text="AuthenticationResponseJSON: what `credential.toJSON()` gives after get().")


class PasskeyRenameSerializer(serializers.Serializer):
    name = Text(**PASSKEY_NAME)


class PasskeyRemoveSerializer(serializers.Serializer):
    token = Text(
        max_length=64,
        required=False,
        help_text="A current TOTP code. Needed only when the second factor was not proven in this "
        "session within the last TWOFA_REAUTH_SECONDS (15 minutes); a passkey proves it too.",
    )


class WebAuthnOptionsSerializer(serializers.Serializer):
    publicKey = WebAuthnJson(
        help_text="WebAuthn's options JSON, for PublicKeyCredential.parseCreationOptionsFromJSON() "
        "or parseRequestOptionsFromJSON()."
    )


class PasskeyAddedResponseSerializer(serializers.Serializer):
    status = serializers.CharField(default="success")
    passkey = PasskeySerializer()
    user = UserSerializer()
    recovery_codes = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Only when this passkey switched 2FA on: ten single-use codes, shown this once.",
    )


class PasskeyResponseSerializer(serializers.Serializer):
    status = serializers.CharField(default="success")
    passkey = PasskeySerializer()


class PasskeyListResponseSerializer(serializers.Serializer):
    status = serializers.CharField(default="success")
    passkeys = PasskeySerializer(many=True)


class GenerateResponseSerializer(serializers.Serializer):
    base32 = serializers.CharField(help_text="The secret, for typing into an authenticator app.")
    otpauth_url = serializers.CharField(help_text="otpauth://totp/<issuer>:<email>?secret=...&issuer=...")
    qr_code = serializers.CharField(help_text="otpauth_url as a QR code: data:image/svg+xml;base64,...")


class StatusUserSerializer(serializers.Serializer):
    status = serializers.CharField(default="success")
    user = UserSerializer()


class SessionInfoSerializer(serializers.Serializer):
    authenticated_at = serializers.DateTimeField(help_text="When this session's login began.")
    second_factor_at = serializers.DateTimeField(
        allow_null=True, help_text="When this session last proved a second factor; null if never."
    )
    methods = serializers.ListField(
        child=serializers.CharField(),
        help_text='How this session authenticated, in order: "password" or "passkey", then "totp", '
        '"recovery_code" or "passkey".',
    )
    reauthenticated_until = serializers.DateTimeField(
        allow_null=True,
        help_text="Until when changes of factors need no code (otp/disable, passkeys, password); null: "
        "they need one, when 2FA is on.",
    )
    enrolment_required = serializers.BooleanField(
        help_text="TWOFA_REQUIRED is on and the account has no second factor yet: enrol one first."
    )


class MeResponseSerializer(serializers.Serializer):
    status = serializers.CharField(default="success")
    user = UserSerializer()
    session = SessionInfoSerializer()


class SessionSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Names the session (DELETE sessions/<id>); opens nothing.")
    current = serializers.BooleanField(help_text="The session of this request.")
    state = serializers.ChoiceField(choices=["pending", "full"], help_text="pending: waiting for a second factor.")
    created_at = serializers.DateTimeField(allow_null=True)
    last_active_at = serializers.DateTimeField(allow_null=True, help_text="May lag by up to a minute.")
    ip = serializers.CharField(allow_null=True, help_text="The client's address when the session began.")
    user_agent = serializers.CharField(help_text="The client's User-Agent header, up to 255 characters.")

    def to_representation(self, summary):
        return {
            "id": summary.id,
            "current": summary.current,
            "state": "full" if summary.full else "pending",
            "created_at": _iso(summary.created_at),
            "last_active_at": _iso(summary.last_active_at),
            "ip": summary.ip,
            "user_agent": summary.user_agent,
        }


def _iso(moment):
    """As DRF writes a datetime with TIME_ZONE UTC ("...Z"), a listing's many at a tenth of the cost."""
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class SessionListResponseSerializer(serializers.Serializer):
    status = serializers.CharField(default="success")
    sessions = SessionSerializer(many=True)


class EndOthersResponseSerializer(serializers.Serializer):
    status = serializers.CharField(default="success")
    ended = serializers.IntegerField(help_text="How many other sessions ended.")


class PasswordChangeSerializer(serializers.Serializer):
    current_password = Text(max_length=128, trim_whitespace=False, style={"input_type": "password"})
    new_password = Text(max_length=128, trim_whitespace=False, style={"input_type": "password"})
    token = Text(
        max_length=64,
        required=False,
        help_text="With 2FA on: a current TOTP code or a recovery code. Needed only when the second "
        "factor was not proven in this session within the last TWOFA_REAUTH_SECONDS (15 minutes).",
    )


class StatusOnlySerializer(serializers.Serializer):
    status = serializers.CharField(default="success")


class StatusMessageSerializer(serializers.Serializer):
    status = serializers.CharField(default="success")
    message = serializers.CharField()


class VerifyResponseSerializer(serializers.Serializer):
    otp_verified = serializers.BooleanField()
    user = UserSerializer()
    recovery_codes = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Only when this call switched 2FA on: ten single-use codes (xxxxx-xxxxx), shown this once.",
    )


class RecoveryCodesResponseSerializer(serializers.Serializer):
    status = serializers.CharField(default="success")
    recovery_codes = serializers.ListField(
        child=serializers.CharField(), help_text="Ten new single-use codes; the old ones no longer work."
    )


class ValidateResponseSerializer(serializers.Serializer):
    otp_valid = serializers.BooleanField()


class DisableResponseSerializer(serializers.Serializer):
    otp_disabled = serializers.BooleanField()
    user = UserSerializer()


class FailSerializer(serializers.Serializer):
    status = serializers.CharField(default="fail")
    message = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Present on validation errors only: the messages of each field.",
    )


class HealthSerializer(serializers.Serializer):
    status = serializers.CharField(help_text='"ok", or "fail" when a part is down')
    message = serializers.CharField(required=False, help_text="Which parts are down (503 only)")
    checks = serializers.DictField(
        child=serializers.CharField(), help_text='Each part ("database", "cache" with Redis): "ok" or "unavailable"'
    )
