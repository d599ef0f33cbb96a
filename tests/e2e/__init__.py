"""End-to-end tests: a real server process (gunicorn, and nginx where said) over HTTP; all marked `e2e`."""
