"""The processes end-to-end and browser tests start (gunicorn, nginx, a TCP proxy, Chromium), a
client of the API over real HTTP, and what the tests need beyond Python."""
