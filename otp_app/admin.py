"""Django admin for the email-keyed user.

No secret is shown or editable here. Staff accounts with 2FA on must give a code at the admin
login too: a password alone opens neither the API nor the admin.
"""
from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm

from . import clock, services, throttles
from .models import UserModel


class AdminLoginForm(AdminAuthenticationForm):
    otp_token = forms.CharField(
        label="Authenticator code", required=False, max_length=64,
        help_text="Required when two-factor authentication is on for this account.",
    )

    def clean(self):
        email = self.cleaned_data.get("username") or ""
        try:
            throttles.check_password_attempts(self.request, email=email)
        except throttles.TooManyPasswordFailures as error:
            raise forms.ValidationError(f"Too many failed logins. Try again in {error.retry_after} seconds.")
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            throttles.count_password_failure(self.request, email=email)
            raise
        user = self.get_user()
        if user is not None and user.otp_enabled:
            self._check_code(user)
        return cleaned

    def _check_code(self, user):
        try:
            services.accept_code(user=user, code=self.cleaned_data.get("otp_token") or "", now=clock.now())
        except services.LockedOut as error:
            raise forms.ValidationError(f"Too many wrong codes. Try again in {error.retry_after} seconds.")
        except (services.CodeRejected, services.NotEnrolled):
            raise forms.ValidationError("Enter a valid, unused authenticator code.")


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


@admin.register(UserModel)
class UserAdmin(BaseUserAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    ordering = ("email",)
    list_display = ("email", "name", "otp_enabled", "otp_verified", "is_staff", "is_active", "last_login")
    list_filter = ("otp_enabled", "otp_verified", "is_staff", "is_superuser", "is_active")
    search_fields = ("email", "name")
    readonly_fields = ("otp_enabled", "otp_verified", "failed_attempts", "locked_until", "last_login", "created_at")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("name",)}),
        ("Two-factor authentication", {"fields": ("otp_enabled", "otp_verified", "failed_attempts", "locked_until")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "created_at")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "name", "usable_password", "password1", "password2")}),
    )
