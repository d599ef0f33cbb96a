"""API tests: each endpoint and rule through Django's or DRF's test client, in the test process."""
