"""SESSION_ENGINE for sessions in the database (the default)."""
from django.contrib.sessions.backends import db

from . import CheapReadsAndWrites


class SessionStore(CheapReadsAndWrites, db.SessionStore):
    pass
