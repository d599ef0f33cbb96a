"""The production settings, plus the benchmark's floor views (bench/urls.py).

Only two things differ from otp_project.settings: the URLconf (the API's own, with the floor
paths under /bench/ appended after it, so the API resolves exactly as in production), and, when
BENCH_PASSWORD_HASHER=pbkdf2-twice, the comparison hasher of bench/hashers.py in front.
"""

import os

from otp_project.settings import *  # noqa: F401,F403
from otp_project.settings import PASSWORD_HASHERS

ROOT_URLCONF = "bench.urls"

if os.environ.get("BENCH_PASSWORD_HASHER") == "pbkdf2-twice":
    PASSWORD_HASHERS = ["bench.hashers.PBKDF2TwiceHasher"] + [
        hasher for hasher in PASSWORD_HASHERS if hasher != "django.contrib.auth.hashers.PBKDF2PasswordHasher"
    ]
