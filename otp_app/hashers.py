"""The password hasher this service uses first.

Argon2id at OWASP's minimum recommended cost (19 MiB, t=2, p=1): one hash per login stays cheap
enough for a two-core server while a stolen hash stays expensive to attack. PBKDF2 hashes made
earlier are still accepted (see PASSWORD_HASHERS) and upgraded on the next login.
"""

from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idHasher(Argon2PasswordHasher):
    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1
