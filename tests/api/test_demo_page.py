"""/demo/: served with DEBUG on (or TWOFA_DEMO_PAGE), under its own Content-Security-Policy,
loading its script and style from this origin only; off, it is the API's JSON 404."""

from otp_app.middleware import DEMO


def test_the_demo_page_is_served_with_its_policy(api, db, settings):
    settings.TWOFA_DEMO_PAGE = True

    response = api.get("/demo/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert response["Content-Security-Policy"] == DEMO
    page = response.content.decode()
    assert '/static/otp_app/demo/demo.js"' in page and "<script>" not in page  # no inline script


def test_the_demo_page_is_off_unless_switched_on(api, db, settings):
    settings.TWOFA_DEMO_PAGE = False

    response = api.get("/demo/")

    assert response.status_code == 404
    assert response.json() == {"status": "fail", "message": "Not found"}


def test_the_demo_page_only_answers_get(api, db, settings):
    settings.TWOFA_DEMO_PAGE = True
    assert api.post("/demo/").status_code == 405
