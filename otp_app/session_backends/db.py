"""SESSION_ENGINE for sessions in the database (the default)."""
from . import CheapReadsAndWrites, PlainWrites


class SessionStore(CheapReadsAndWrites, PlainWrites):
    pass
