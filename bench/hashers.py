"""The comparison configuration: a login that hashes twice with PBKDF2-SHA256 at 390,000 iterations.

This is what many Django services still run: PBKDF2 at Django 4.2's iteration count, and a
stored hash that is re-encoded at every login (`must_update` always true, as when the stored
parameters never match the preferred ones), so each login verifies (one hash) and re-hashes and
saves the password (a second hash and an UPDATE). Served by a separate server started with
BENCH_PASSWORD_HASHER=pbkdf2-twice; the API code is the same.
"""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class PBKDF2TwiceHasher(PBKDF2PasswordHasher):
    iterations = 390_000

    def must_update(self, encoded):
        return True
