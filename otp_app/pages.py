"""The /demo/ page: plain HTML and JavaScript that walk the whole API in a browser (register,
login, TOTP, recovery codes, passkeys). On by default with DEBUG only (TWOFA_DEMO_PAGE)."""

from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def demo(request):
    if not settings.TWOFA_DEMO_PAGE:
        raise Http404
    return render(request, "otp_app/demo.html")
