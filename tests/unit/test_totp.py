"""otp_app/totp.py on its own: RFC 6238 codes, the drift window, what a typed code may look like."""

import base64
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from otp_app import totp

# RFC 6238 Appendix B: the SHA-1 seed is the ASCII string "12345678901234567890".
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = 1_800_000_000.0  # a step boundary
STEP = int(NOW // 30)


def test_rfc_secret_is_the_documented_base32():
    assert RFC_SECRET == "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"


@pytest.mark.parametrize("unix_time, expected", RFC_VECTORS)
def test_code_at_gives_the_rfc6238_appendix_b_sha1_code(unix_time, expected):
    assert totp.code_at(secret=RFC_SECRET, step=unix_time // 30, digits=8) == expected


@pytest.mark.parametrize("unix_time, expected", RFC_VECTORS)
def test_rfc6238_code_matches_its_own_time_step(unix_time, expected):
    assert totp.matching_step(secret=RFC_SECRET, code=expected, now=unix_time, digits=8) == unix_time // 30


@pytest.mark.parametrize("unix_time, expected", RFC_VECTORS)
def test_rfc6238_code_of_one_vector_does_not_match_at_another_time(unix_time, expected):
    later = unix_time + 10 * 30
    assert totp.matching_step(secret=RFC_SECRET, code=expected, now=later, digits=8) is None


def test_codes_have_six_digits_and_steps_of_thirty_seconds_by_default():
    assert totp.DIGITS == 6
    assert totp.STEP_SECONDS == 30
    code = totp.code_at(secret=SECRET, step=STEP)
    assert len(code) == 6 and code.isdigit()
    # The 6-digit code is the last six digits of the 8-digit one (RFC 4226 truncation).
    assert totp.code_at(secret=RFC_SECRET, step=59 // 30) == "287082"


@pytest.mark.parametrize(
    "now, step",
    [(0, 0), (29.999, 0), (30, 1), (59, 1), (NOW, STEP), (NOW + 29.5, STEP), (NOW - 0.5, STEP - 1)],
)
def test_step_at_counts_whole_thirty_second_steps(now, step):
    assert totp.step_at(now) == step


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_code_within_one_step_of_now_is_accepted(offset):
    code = totp.code_at(secret=SECRET, step=STEP + offset)
    assert totp.matching_step(secret=SECRET, code=code, now=NOW) == STEP + offset


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_code_two_or_more_steps_away_is_refused(offset):
    code = totp.code_at(secret=SECRET, step=STEP + offset)
    assert totp.matching_step(secret=SECRET, code=code, now=NOW) is None


def test_window_zero_accepts_only_the_current_step():
    assert totp.matching_step(secret=SECRET, code=totp.code_at(secret=SECRET, step=STEP), now=NOW, window=0) == STEP
    for offset in (-1, 1):
        code = totp.code_at(secret=SECRET, step=STEP + offset)
        assert totp.matching_step(secret=SECRET, code=code, now=NOW, window=0) is None


def test_code_of_another_secret_is_refused():
    other = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"
    code = totp.code_at(secret=other, step=STEP)
    assert code not in {totp.code_at(secret=SECRET, step=STEP + offset) for offset in (-1, 0, 1)}
    assert totp.matching_step(secret=SECRET, code=code, now=NOW) is None


@pytest.mark.parametrize(
    "spaced",
    [
        pytest.param(lambda code: code[:3] + " " + code[3:], id="authenticator-spacing"),
        pytest.param(lambda code: " " + code + " ", id="padded"),
        pytest.param(lambda code: " ".join([code[:2], code[2:4], code[4:]]), id="pairs"),
        pytest.param(lambda code: code[:3] + "\t" + code[3:], id="tab"),
        pytest.param(lambda code: code + "\n", id="newline"),
    ],
)
def test_whitespace_in_a_typed_code_is_forgiven(spaced):
    typed = spaced(totp.code_at(secret=SECRET, step=STEP))
    assert totp.matching_step(secret=SECRET, code=typed, now=NOW) == STEP


def _current_code() -> str:
    return totp.code_at(secret=SECRET, step=STEP)


ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda code: code[:5], id="too-short"),
        pytest.param(lambda code: code + "0", id="too-long"),
        pytest.param(lambda code: "0" + code, id="leading-extra-digit"),
        pytest.param(lambda code: "", id="empty"),
        pytest.param(lambda code: "      ", id="only-spaces"),
        pytest.param(lambda code: code[:5] + "a", id="letter"),
        pytest.param(lambda code: code[:5] + "-", id="punctuation"),
        pytest.param(lambda code: "-" + code[1:], id="sign"),
        pytest.param(lambda code: code[:3] + "." + code[4:], id="dot"),
        pytest.param(lambda code: code.translate(ARABIC_INDIC), id="arabic-indic-digits"),
        pytest.param(lambda code: code.translate(FULLWIDTH), id="fullwidth-digits"),
        pytest.param(lambda code: code[:5] + "²", id="superscript-digit"),
        pytest.param(lambda code: code[:3] + "\x00" + code[3:], id="nul"),
    ],
)
def test_malformed_code_is_refused_without_error(mangle):
    assert totp.matching_step(secret=SECRET, code=mangle(_current_code()), now=NOW) is None


def test_new_secret_is_32_base32_characters_of_160_bits():
    secret = totp.new_secret()
    assert len(secret) == 32
    assert set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert len(base64.b32decode(secret)) == 20


def test_new_secret_is_random_each_time():
    secrets = {totp.new_secret() for _ in range(200)}
    assert len(secrets) == 200
    # Not a fixed prefix with a counter: the characters in each position vary.
    assert len({secret[:8] for secret in secrets}) == 200


def test_otpauth_url_carries_secret_issuer_and_email_label():
    url = totp.otpauth_url(secret=SECRET, email="ann@example.com", issuer="2FA API")
    parts = urlsplit(url)
    assert parts.scheme == "otpauth"
    assert parts.netloc == "totp"
    label = unquote(parts.path.lstrip("/"))
    assert label == "2FA API:ann@example.com"
    query = parse_qs(parts.query)
    assert query["secret"] == [SECRET]
    assert query["issuer"] == ["2FA API"]


def test_a_code_is_checked_with_its_secret_decoded_once(monkeypatch):
    # pyotp decodes the base32 secret again for every code; the window's three steps need it once.
    decoded = []
    real = base64.b32decode
    monkeypatch.setattr(base64, "b32decode", lambda *args, **kwargs: decoded.append(1) or real(*args, **kwargs))
    now = 1_700_000_000
    later = totp.step_at(now) + 1
    assert totp.matching_step(secret=RFC_SECRET, code=totp.code_at(secret=RFC_SECRET, step=later), now=now) == later
    decoded.clear()
    totp.matching_step(secret=RFC_SECRET, code="000000", now=now, window=1)
    assert len(decoded) == 1
