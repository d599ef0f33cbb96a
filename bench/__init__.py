"""The benchmark of the 2FA API: `make bench` (see the README, "Benchmark").

run.py drives it: it starts gunicorn with the production configuration on a fresh database,
prepares accounts through the API with a separate load process (load.py), and measures each
scenario against floors (floors.py) served by the same server processes.
"""
