"""Require 2FA: with TWOFA_REQUIRED an account without a second factor may only enrol one (me,
logout, otp/generate, otp/verify, passkey registration), every other full-session endpoint
answers 403; with TWOFA_REQUIRED_FOR_STAFF (or TWOFA_REQUIRED) staff without one stay out of the
admin. Both off by default, when nothing changes."""

import re
import uuid

import pytest
from django.contrib.admin import AdminSite
from django.test import RequestFactory
from django.urls import path
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from otp_app import permissions, services
from otp_app.middleware import AdminEnrolmentMiddleware
from otp_app.urls import ENDPOINTS
from tests.helpers import (
    ADMIN_USERS,
    DISABLE,
    GENERATE,
    LOGIN,
    ME,
    PASSKEYS,
    PASSWORD,
    RECOVERY_CODES,
    REGISTER,
    REGISTERED,
    VERIFY,
    add_passkey,
    admin_login,
    code_for,
    enrol,
    login,
    make_user,
    validate,
)
from tests.support.authenticator import SoftwareAuthenticator

ENROL_FIRST = {"status": "fail", "message": "Two-factor authentication is required: enrol first"}

# What an account without a second factor may call: written out here, apart from the views'
# `allowed_before_enrolment`, so that losing either fails a test.
ALLOWED_BEFORE_ENROLMENT = {
    "me",
    "logout",
    "otp/generate",
    "otp/verify",
    "passkeys/registration/options",
    "passkeys/registration",
}


@pytest.fixture
def required(settings):
    settings.TWOFA_REQUIRED = True


@pytest.fixture
def required_for_staff(settings):
    settings.TWOFA_REQUIRED_FOR_STAFF = True


def authenticator() -> SoftwareAuthenticator:
    return SoftwareAuthenticator(origin="http://testserver", rp_id="localhost")


# Every method of every endpoint, one row each: a new endpoint is a new row.
CALLS = [
    pytest.param(route, view, method, id=f"{method.upper()} {route}")
    for route, view, _name in ENDPOINTS
    for method in view.http_method_names
    if method != "options" and hasattr(view, method)
]


def call(client, route: str, method: str):
    url = "/api/auth/" + re.sub(r"<[^>]+>", str(uuid.uuid4()), route)  # an id of nothing
    return getattr(client, method)(url, {}, format="json")


def needs_a_full_session(view) -> bool:
    return permissions.FullSession in view.permission_classes


# --- The rule, endpoint by endpoint ------------------------------------------------------------------


@pytest.mark.parametrize("route, view, method", CALLS)
def test_an_account_without_a_second_factor_may_only_enrol(required, logged_in_client, route, view, method):
    response = call(logged_in_client, route, method)

    if needs_a_full_session(view) and route not in ALLOWED_BEFORE_ENROLMENT:
        assert response.status_code == 403, response.content
        assert response.json() == ENROL_FIRST
    else:
        # Allowed, or open to anonymous and pending sessions: whatever it answers, not this 403.
        assert response.status_code != 403, response.content


@pytest.mark.parametrize("route, view, method", CALLS)
def test_with_the_rule_off_an_account_without_a_second_factor_is_never_told_to_enrol(
    logged_in_client, route, view, method
):
    response = call(logged_in_client, route, method)

    assert response.status_code != 403, response.content


@pytest.mark.parametrize("route, view", [(route, view) for route, view, _name in ENDPOINTS])
def test_the_views_that_enrol_say_so_and_only_they(route, view):
    assert getattr(view, "allowed_before_enrolment", False) is (route in ALLOWED_BEFORE_ENROLMENT)
    if needs_a_full_session(view):
        assert permissions.SecondFactorEnrolled in view.permission_classes


def test_both_settings_are_off_by_default(settings):
    assert settings.TWOFA_REQUIRED is False
    assert settings.TWOFA_REQUIRED_FOR_STAFF is False


@pytest.mark.parametrize(
    "required_setting, fields, expected",
    [
        (True, {}, True),
        (True, {"otp_enabled": True, "otp_verified": True}, False),
        (True, {"passkey_count": 1}, False),
        (False, {}, False),
        (False, {"otp_enabled": True, "otp_verified": True}, False),
    ],
    ids=["required-no-factor", "required-totp", "required-passkey", "off-no-factor", "off-totp"],
)
def test_enrolment_is_required_of_accounts_without_a_second_factor_when_the_setting_is_on(
    settings, db, required_setting, fields, expected
):
    settings.TWOFA_REQUIRED = required_setting

    assert permissions.enrolment_required(make_user(**fields)) is expected


# --- The flows that enrol ------------------------------------------------------------------------------


def test_the_react_apps_flow_enrols_and_then_everything_opens(required, db, clock):
    app = APIClient(HTTP_ORIGIN="http://localhost:3000")
    registered = app.post(REGISTER, {"email": "ann@example.com", "name": "Ann", "password": PASSWORD}, format="json")
    assert registered.json() == REGISTERED
    user = login(app, "ann@example.com").json()["user"]
    assert user["otp_enabled"] is False  # the app goes to the profile page: the session is full
    assert app.get(ME).status_code == 200
    assert app.get(PASSKEYS).json() == ENROL_FIRST

    generated = app.post(GENERATE, {"user_id": user["id"], "email": user["email"]}, format="json")
    assert generated.status_code == 200, generated.content
    token = code_for(generated.json()["base32"], clock)
    verified = app.post(VERIFY, {"user_id": user["id"], "token": token}, format="json")
    assert verified.status_code == 200, verified.content

    assert app.get(PASSKEYS).status_code == 200
    clock.tick(30)
    renewed = app.post(RECOVERY_CODES, {"token": code_for(generated.json()["base32"], clock)}, format="json")
    assert renewed.status_code == 200, renewed.content


def test_a_later_login_with_the_second_factor_opens_everything(required, logged_in_client, user, clock):
    secret, _ = enrol(logged_in_client, clock)
    later = APIClient()
    login(later, user.email)
    assert later.get(PASSKEYS).status_code == 403  # pending, as always: not this rule's answer
    assert later.get(PASSKEYS).json() != ENROL_FIRST

    clock.tick(30)
    assert validate(later, code_for(secret, clock)).status_code == 200

    assert later.get(PASSKEYS).status_code == 200


def test_a_passkey_enrols_as_well(required, logged_in_client, user, clock):
    assert logged_in_client.get(PASSKEYS).json() == ENROL_FIRST

    added = add_passkey(logged_in_client, authenticator(), name="Laptop")

    assert added.status_code == 201, added.content
    assert added.json()["user"]["two_factor_enabled"] is True
    assert logged_in_client.get(PASSKEYS).status_code == 200


def test_switching_2fa_off_makes_the_account_enrol_again(required, logged_in_client, user, clock):
    enrol(logged_in_client, clock)
    assert logged_in_client.get(PASSKEYS).status_code == 200

    disabled = logged_in_client.post(DISABLE, {}, format="json")

    assert disabled.status_code == 200, disabled.content
    assert logged_in_client.get(PASSKEYS).json() == ENROL_FIRST
    assert logged_in_client.post(DISABLE, {}, format="json").json() == ENROL_FIRST
    assert logged_in_client.get(ME).status_code == 200
    assert logged_in_client.post(GENERATE, {}, format="json").status_code == 200


def test_removing_the_last_passkey_makes_the_account_enrol_again(required, logged_in_client, user, clock):
    passkey = add_passkey(logged_in_client, authenticator()).json()["passkey"]

    removed = logged_in_client.delete(f"{PASSKEYS}/{passkey['id']}", {}, format="json")

    assert removed.status_code == 200, removed.content
    assert removed.json()["user"]["two_factor_enabled"] is False
    assert logged_in_client.get(PASSKEYS).json() == ENROL_FIRST


def test_an_administrators_reset_makes_the_account_enrol_again(required, logged_in_client, user, clock):
    enrol(logged_in_client, clock)

    services.reset_by_admin(user=user)

    assert logged_in_client.get(PASSKEYS).json() == ENROL_FIRST


def test_anonymous_requests_still_get_401(required, api, db):
    assert api.get(PASSKEYS).status_code == 401


def test_login_and_register_are_untouched(required, api, db):
    body = {"email": "zed@example.com", "name": "Zed", "password": PASSWORD}
    assert api.post(REGISTER, body, format="json").status_code == 201
    assert api.post(LOGIN, body, format="json").status_code == 200


# --- The permission on a project's own views -----------------------------------------------------------


class ProjectView(APIView):
    permission_classes = [IsAuthenticated, permissions.SecondFactorEnrolled]

    def get(self, request):
        return Response({"status": "success"})


class ProjectEnrolmentView(ProjectView):
    allowed_before_enrolment = True


@pytest.mark.parametrize(
    "view, fields, status",
    [
        (ProjectView, {}, 403),
        (ProjectView, {"otp_enabled": True, "otp_verified": True}, 200),
        (ProjectEnrolmentView, {}, 200),
    ],
    ids=["no-second-factor", "with-a-second-factor", "an-enrolment-view"],
)
def test_a_project_reuses_the_permission_on_its_own_views(required, db, view, fields, status):
    request = APIRequestFactory().get("/anything")
    force_authenticate(request, user=make_user(**fields))

    response = view.as_view()(request)

    assert response.status_code == status
    if status == 403:
        assert response.data["message"] == ENROL_FIRST["message"]


# --- Swagger -------------------------------------------------------------------------------------------


def test_swagger_documents_the_403_where_the_rule_applies_only(api, db):
    schema = api.get("/swagger.json").json()
    for route, view, _name in ENDPOINTS:
        item = schema["paths"]["/api/auth/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)]
        for method, operation in item.items():
            if method == "parameters":
                continue
            documented = ENROL_FIRST["message"] in operation["responses"].get("403", {}).get("description", "")
            refused = needs_a_full_session(view) and route not in ALLOWED_BEFORE_ENROLMENT
            assert documented is refused, (route, method)


# --- The admin -----------------------------------------------------------------------------------------


def admin_page(client, url="/admin/"):
    response = client.get(url)
    return response.status_code, response.content.decode()


@pytest.fixture
def browser():
    return APIClient(enforce_csrf_checks=True)


def test_staff_without_2fa_log_in_to_the_admin_but_are_sent_to_enrol(required_for_staff, browser, superuser, clock):
    response = admin_login(browser, superuser.email)
    assert (response.status_code, response["Location"]) == (302, "/admin/")

    for url in ["/admin/", ADMIN_USERS, f"{ADMIN_USERS}{superuser.pk}/change/", "/admin/password_change/"]:
        status, content = admin_page(browser, url)
        assert status == 403, url
        assert "Two-factor authentication is required: enrol first" in content
        assert "/api/auth/otp/generate" in content
    assert browser.post(ADMIN_USERS, {"action": "unlock", "_selected_action": [superuser.pk]}).status_code == 403


def test_the_admin_login_and_logout_stay_open_to_staff_without_2fa(
    required_for_staff, settings, browser, superuser, clock
):
    admin_login(browser, superuser.email)
    csrf = browser.cookies[settings.CSRF_COOKIE_NAME].value

    assert browser.get("/admin/login/").status_code == 302  # logged in: Django sends them on
    assert browser.post("/admin/logout/", {"csrfmiddlewaretoken": csrf}).status_code == 200
    assert browser.get("/admin/login/").status_code == 200


def test_staff_who_enrol_through_the_api_enter_the_admin(required_for_staff, browser, superuser, clock):
    admin_login(browser, superuser.email)
    assert admin_page(browser)[0] == 403

    enrol(browser, clock)  # the admin's login is a full session of the API too

    assert admin_page(browser)[0] == 200
    assert admin_page(browser, ADMIN_USERS)[0] == 200


def test_staff_with_2fa_enter_the_admin(required_for_staff, browser, staff_with_2fa, clock):
    response = admin_login(browser, staff_with_2fa.email, otp_token=code_for(staff_with_2fa.otp_secret, clock))

    assert response.status_code == 302
    assert admin_page(browser)[0] == 200


def test_staff_with_2fa_still_give_a_code_at_the_admin_login(required_for_staff, browser, staff_with_2fa, clock):
    admin_login(browser, staff_with_2fa.email)

    assert admin_page(browser)[0] == 302  # to the login page: the password alone logs nobody in


def test_twofa_required_keeps_staff_without_2fa_out_of_the_admin_too(required, browser, superuser, clock):
    admin_login(browser, superuser.email)

    assert admin_page(browser)[0] == 403


def test_with_both_settings_off_staff_without_2fa_enter_the_admin(browser, superuser, clock):
    admin_login(browser, superuser.email)

    assert admin_page(browser)[0] == 200


def test_the_staff_setting_alone_leaves_the_api_as_it_is(required_for_staff, superuser, user, clock):
    for account in (superuser, user):
        client = APIClient()
        login(client, account.email)
        assert client.get(PASSKEYS).status_code == 200
        assert client.post(RECOVERY_CODES, {"token": "123456"}, format="json").status_code == 404  # not enrolled


def test_users_who_are_not_staff_still_meet_the_admins_login(required_for_staff, browser, user, clock):
    browser.force_login(user)

    response = browser.get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


backoffice = AdminSite(name="backoffice")
urlpatterns = [path("staff-area/", backoffice.urls)]


@pytest.mark.urls(__name__)
def test_any_admin_site_is_found_by_its_namespace_not_its_path(required_for_staff, superuser, staff_with_2fa):
    without, with_2fa = APIClient(), APIClient()
    without.force_login(superuser)
    with_2fa.force_login(staff_with_2fa)

    status, content = admin_page(without, "/staff-area/")

    assert status == 403
    assert "Two-factor authentication is required: enrol first" in content
    assert 'action="/staff-area/logout/"' in content
    assert admin_page(with_2fa, "/staff-area/")[0] == 200


def test_off_the_middleware_reads_neither_the_user_nor_the_url():
    # The hot path's cost: two settings read. A request with no user and no resolved URL would
    # fail on either.
    request = RequestFactory().get("/admin/")

    assert AdminEnrolmentMiddleware(lambda request: None).process_view(request, None, (), {}) is None
