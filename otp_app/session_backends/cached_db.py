"""SESSION_ENGINE for sessions read from the cache (Redis) and written through to the database."""
from django.contrib.sessions.backends import cached_db

from . import CheapReadsAndWrites, PlainWrites


class SessionStore(CheapReadsAndWrites, cached_db.SessionStore, PlainWrites):
    pass
