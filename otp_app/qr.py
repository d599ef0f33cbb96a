"""QR codes for clients without a QR library: the otpauth URL as an SVG data URI (segno)."""

import base64
import io

import segno


def svg_data_uri(text: str) -> str:
    # Error correction M (15%) survives a slightly blurred phone camera; a 4-module quiet zone is
    # what the QR standard requires for reliable scanning.
    code = segno.make(text, error="m")
    svg = io.BytesIO()
    code.save(svg, kind="svg", scale=4, border=4, xmldecl=False, svgclass=None, lineclass=None)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.getvalue()).decode()
