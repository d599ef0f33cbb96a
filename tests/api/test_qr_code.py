"""otp/generate's `qr_code`: an SVG data URI that a QR reader decodes back to `otpauth_url`."""

import base64
import re

import numpy
import zxingcpp

from otp_app import qr

PREFIX = "data:image/svg+xml;base64,"


def svg_to_pixels(svg: str, scale: int = 4) -> numpy.ndarray:
    """Rasterise segno's SVG: one path of horizontal runs ("M x y", "m dx dy", "h n") in module units."""
    width = int(re.search(r'width="(\d+)"', svg).group(1)) // scale
    modules = numpy.full((width, width), 255, dtype=numpy.uint8)
    path = re.search(r' d="([^"]+)"', svg).group(1)
    x = y = 0.0
    for command, numbers in re.findall(r"([MmHh])([-\d. ]+)", path):
        values = [float(number) for number in numbers.split()]
        if command == "M":
            x, y = values
        elif command == "m":
            x, y = x + values[0], y + values[1]
        else:  # h: a dark run on row floor(y)
            modules[int(y), int(x) : int(x + values[0])] = 0
            x += values[0]
    return numpy.kron(modules, numpy.ones((scale, scale), dtype=numpy.uint8))


def decode(data_uri: str) -> str:
    assert data_uri.startswith(PREFIX)
    svg = base64.b64decode(data_uri[len(PREFIX) :]).decode()
    assert svg.startswith("<svg")
    found = zxingcpp.read_barcodes(svg_to_pixels(svg))
    assert len(found) == 1
    return found[0].text


def test_qr_code_decodes_back_to_the_text():
    url = "otpauth://totp/2FA%20API:ann%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=2FA%20API"
    assert decode(qr.svg_data_uri(url)) == url


def test_generate_returns_the_otpauth_url_as_a_qr_code(logged_in_client, user):
    body = logged_in_client.post("/api/auth/otp/generate", {}, format="json").json()
    assert decode(body["qr_code"]) == body["otpauth_url"]
    assert f"secret={body['base32']}" in decode(body["qr_code"])
