"""The comparison hasher of server P: PBKDF2-SHA256 at 390,000 iterations (Django 4.2's count),
re-hashing at every login, so that each login hashes twice, as many Django services still do."""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class PBKDF2TwiceHasher(PBKDF2PasswordHasher):
    iterations = 390_000

    def must_update(self, encoded):
        # As when the stored parameters never match the preferred ones: every login verifies
        # (one hash), then re-encodes and saves the password (a second hash and an UPDATE).
        return True
