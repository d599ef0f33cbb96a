"""Django admin for the email-keyed user.

No secret is shown or editable here. Staff accounts with 2FA on must give a code at the admin
login too: a password alone opens neither the API nor the admin. (With passkeys only, a recovery
code; or sign in with the passkey through the API first: its full session is the admin's login.)
"""

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db import transaction
from django.forms.models import BaseInlineFormSet

from . import audit, clock, metrics, services, throttles
from .models import Passkey, SecurityEvent, Session, UserModel

Kind = SecurityEvent.Kind


class AdminLoginForm(AdminAuthenticationForm):
    otp_token = forms.CharField(
        label="Authenticator code",
        required=False,
        max_length=64,
        help_text="Required when two-factor authentication is on for this account.",
    )

    def clean(self):
        """The API's login rules for the admin: the same limits, the same code check, the same
        audit events (`via: admin`)."""
        email = self.cleaned_data.get("username") or ""
        try:
            attempt = throttles.count_password_attempt(self.request, email=email)
        except throttles.TooManyPasswordFailures as error:
            raise forms.ValidationError(f"Too many failed logins. Try again in {error.retry_after} seconds.") from None
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            user = self.get_user()
            if user is not None:
                attempt.forgive()  # the password was right; the account may not use the admin
            audit.record_failed_login(self.request, email=email, user=user, via="admin")
            raise
        attempt.forgive()
        user = self.get_user()
        if user.two_factor_enabled:
            self._check_code(user)
        audit.record(
            self.request,
            Kind.LOGIN_SUCCEEDED,
            user=user,
            via="admin",
            second_factor="proven" if user.two_factor_enabled else "off",
        )
        return cleaned

    def _check_code(self, user):
        try:
            proof = services.accept_code(user=user, code=self.cleaned_data.get("otp_token") or "", now=clock.now())
        except services.LockedOut as error:
            raise forms.ValidationError(f"Too many wrong codes. Try again in {error.retry_after} seconds.") from None
        except services.CodeRejected as rejected:
            metrics.count_code(rejected.proof, accepted=False)
            audit.record_lock(self.request, rejected, user=user, via="admin")
            raise forms.ValidationError("Enter a valid, unused authenticator code.") from None
        except services.CodesLocked:
            raise forms.ValidationError(
                "Too many wrong codes: use a recovery code at the API, or ask an administrator to unlock the account."
            ) from None
        except services.NotEnrolled:
            raise forms.ValidationError("Enter a valid, unused authenticator code.") from None
        metrics.count_code(proof, accepted=True)


admin.site.login_form = AdminLoginForm
admin.site.login_template = "admin/otp_login.html"


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = UserModel
        fields = ("email", "name")


class UserEditForm(UserChangeForm):
    class Meta:
        model = UserModel
        fields = ("email", "name", "is_active", "is_staff", "is_superuser", "groups", "user_permissions")


class LockedFilter(admin.SimpleListFilter):
    title = "locked out"
    parameter_name = "locked"

    def lookups(self, request, model_admin):
        return (("yes", "Yes"), ("no", "No"))

    def queryset(self, request, queryset):
        now = clock.as_datetime(clock.now())
        if self.value() == "yes":
            return queryset.filter(locked_until__gt=now)
        if self.value() == "no":
            return queryset.exclude(locked_until__gt=now)
        return queryset


class PasskeyInline(admin.TabularInline):
    """An account's passkeys: seen, and removed (ticked "Delete", then Save) as the API removes
    them, so that the last second factor gone turns 2FA off."""

    model = Passkey
    extra = 0
    fields = readonly_fields = ("name", "created_at", "last_used_at", "backed_up", "sign_count")

    def has_add_permission(self, request, obj=None):
        return False  # a passkey is made by its authenticator, never typed in

    def has_change_permission(self, request, obj=None):
        return False


class SessionFormSet(BaseInlineFormSet):
    """The sessions of the inline, each named on the page by its public id. Their primary key is
    the hash of their key, which the page must never hold: the form's hidden primary-key field
    carries the public id instead, and a posted form finds its session by it."""

    @classmethod
    def get_default_prefix(cls):
        return "sessions"  # the foreign key has no reverse accessor to name the formset after

    def add_fields(self, form, index):
        super().add_fields(form, index)
        form.fields[self.model._meta.pk.name] = forms.CharField(
            widget=forms.HiddenInput, required=False, initial=form.instance.public_id
        )

    def _existing_object(self, pk):
        # Django's formsets look up a posted form's object by its primary key; this one's is
        # the public id.
        if not hasattr(self, "_object_dict"):
            self._object_dict = {session.public_id: session for session in self.get_queryset()}
        return self._object_dict.get(pk)


class SessionInline(admin.TabularInline):
    """An account's sessions: seen (never their keys nor their hashes), and ended (ticked
    "Delete", then Save)."""

    model = Session
    formset = SessionFormSet
    fk_name = "user"
    exclude = ("session_key",)  # so the formset's hidden field, the public id, is on the page
    extra = 0
    verbose_name_plural = "sessions (tick Delete and save to end one)"
    fields = readonly_fields = ("public_id", "state", "created_at", "last_active_at", "ip", "user_agent")
    ordering = ("-last_active_at",)

    @admin.display(description="state")
    def state(self, session):
        return "full" if session.full else "pending"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(expire_date__gt=clock.as_datetime(clock.now()))  # live ones

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(UserModel)
class UserAdmin(BaseUserAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    ordering = ("email",)
    list_display = (
        "email",
        "name",
        "otp_enabled",
        "otp_verified",
        "recovery_codes_left",
        "passkey_count",
        "locked",
        "is_staff",
        "last_login",
    )
    list_filter = ("otp_enabled", "otp_verified", LockedFilter, "is_staff", "is_superuser", "is_active")
    search_fields = ("email", "name")
    readonly_fields = (
        "otp_enabled",
        "otp_verified",
        "recovery_codes_left",
        "passkey_count",
        "failed_attempts",
        "locked_until",
        "last_login",
        "created_at",
    )
    inlines = [PasskeyInline, SessionInline]
    actions = ["reset_two_factor", "unlock"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("name",)}),
        (
            "Two-factor authentication",
            {
                "fields": (
                    "otp_enabled",
                    "otp_verified",
                    "recovery_codes_left",
                    "passkey_count",
                    "failed_attempts",
                    "locked_until",
                )
            },
        ),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "created_at")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "name", "usable_password", "password1", "password2")}),
    )

    @admin.display(boolean=True, description="locked out")
    def locked(self, user):
        return user.locked_until is not None and user.locked_until > clock.as_datetime(clock.now())

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []  # no passkeys on the "add user" page

    def save_formset(self, request, form, formset, change):
        if formset.model not in (Session, Passkey):
            return super().save_formset(request, form, formset, change)
        # Nothing is added or changed in these inlines; what is deleted goes through the rules
        # below, and the change message (Django's history) names it. A form that names no object
        # of this account (tampered with) holds a new, unsaved one: it deletes nothing.
        deleted_forms = [deleted for deleted in formset.deleted_forms if not deleted.instance._state.adding]
        formset.new_objects, formset.changed_objects = [], []
        formset.deleted_objects = [deleted.instance for deleted in deleted_forms]
        if formset.model is Session:
            ended = [deleted.instance.session_key for deleted in deleted_forms]
            if ended:
                count, _ = Session.objects.filter(user=form.instance, session_key__in=ended).delete()
                audit.record(request, Kind.SESSIONS_ENDED, user=form.instance, ended=count, by=request.user.email)
            return None
        for deleted in deleted_forms:
            with services.factor_change(user=form.instance, keep=request.session.row_key):
                user, switched_off = services.remove_passkey(user=form.instance, passkey_id=deleted.instance.pk)
                audit.record_passkey_removed(
                    request, user=user, passkey_id=deleted.instance.pk, switched_off=switched_off, by=request.user.email
                )
        return None

    def user_change_password(self, request, id, form_url=""):
        """Django's page; a password set here also ends the account's sessions (but the
        administrator's own), in the same transaction, and is recorded."""
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if request.method == "POST" and response.status_code == 302:
                user = UserModel.objects.get(pk=id)
                audit.record(request, Kind.PASSWORD_CHANGED, user=user, by=request.user.email)
                services.end_sessions(user=user, keep=request.session.row_key)
        return response

    @admin.action(
        description="Reset two-factor authentication (secret, passkeys, recovery codes, lockout)",
        permissions=["change"],
    )
    def reset_two_factor(self, request, queryset):
        for user in queryset:
            with services.factor_change(user=user, keep=request.session.row_key):  # the reset, its event, its email
                services.reset_by_admin(user=user)
                audit.record(request, SecurityEvent.Kind.OTP_RESET_BY_ADMIN, user=user, by=request.user.email)
        self.message_user(request, f"Two-factor authentication reset for {queryset.count()} account(s).")

    @admin.action(description="Unlock (clear wrong-code lockout)", permissions=["change"])
    def unlock(self, request, queryset):
        for user in queryset:
            services.unlock(user=user)
        self.message_user(request, f"Unlocked {queryset.count()} account(s).")


@admin.register(SecurityEvent)
class SecurityEventAdmin(admin.ModelAdmin):
    """The audit trail, read-only: nobody edits history."""

    list_display = ("created_at", "kind", "email", "client_address", "user_agent")
    list_filter = ("kind", ("user", admin.RelatedOnlyFieldListFilter))
    search_fields = ("email", "user__email", "=request_id")  # a request id: the event of a log line
    date_hierarchy = "created_at"
    readonly_fields = (
        "created_at",
        "kind",
        "user",
        "email",
        "client_address",
        "user_agent",
        "request_id",
        "detail",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
