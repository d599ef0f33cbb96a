"""The benchmark servers' settings: the production settings, with the floor paths appended to the
URLconf (bench/urls.py) and, when BENCH_PASSWORD_HASHER=pbkdf2-twice, the comparison hasher of
bench/hashers.py in front."""

import os

from otp_project.settings import *  # noqa: F401,F403
from otp_project.settings import PASSWORD_HASHERS

ROOT_URLCONF = "bench.urls"

if os.environ.get("BENCH_PASSWORD_HASHER") == "pbkdf2-twice":
    PASSWORD_HASHERS = ["bench.hashers.PBKDF2TwiceHasher"] + [
        hasher for hasher in PASSWORD_HASHERS if hasher != "django.contrib.auth.hashers.PBKDF2PasswordHasher"
    ]
