"""Session stores (SESSION_ENGINE) for the hot path: `otp_app.session_backends.db`."""
