"""/metrics from a real gunicorn with two workers: logins served by both add up in one scrape,
whichever worker answers it, and still after a worker is replaced; gunicorn.conf.py makes the
metrics directory (or empties the one named) at start and removes the one it made at exit. The
counters request by request: tests/api/test_metrics.py."""

import os
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from tests.helpers import LOGIN, METRICS, PASSWORD, REGISTER, sample, samples
from tests.support.server import serving

pytestmark = pytest.mark.e2e

EMAIL = "metrics@example.com"
BATCH = 12


def scrape(url: str) -> dict:
    response = requests.get(url + METRICS, timeout=30)
    assert response.status_code == 200, response.text
    return samples(response.text)


def logins(url: str) -> float:
    return sample(scrape(url), "twofa_logins_total", outcome="success")


def log_in(url: str) -> None:
    # A connection of its own for each login, so that both workers take some.
    response = requests.post(
        url + LOGIN, json={"email": EMAIL, "password": PASSWORD}, headers={"Connection": "close"}, timeout=30
    )
    assert response.status_code == 200, response.text


def logins_by_worker(directory: Path, workdir: Path) -> dict[int, float]:
    """The logins each worker counted, read from its own file alone."""
    counted = {}
    for file in directory.glob("counter_*.db"):
        pid = int(file.stem.removeprefix("counter_"))
        alone = workdir / f"worker-{pid}"
        alone.mkdir(parents=True)
        shutil.copy(file, alone)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        counted[pid] = registry.get_sample_value("twofa_logins_total", {"outcome": "success"}) or 0
    return counted


def test_logins_over_both_workers_add_up_in_every_scrape_and_survive_a_worker_restart(tmp_path, monkeypatch):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    # No PROMETHEUS_MULTIPROC_DIR: gunicorn.conf.py makes a directory, here under TMPDIR.
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    env = {
        "METRICS_ENABLED": "true",
        "TMPDIR": str(temporary),
        # Each login is counted against the limit until its password is proven: a dozen at once
        # would pass the default per account.
        "TWOFA_LOGIN_FAILURES_PER_ACCOUNT": "100000/15m",
    }
    with serving(tmp_path, workers=2, env=env) as server:
        [directory] = temporary.glob("otp-metrics-*")
        body = {"email": EMAIL, "name": "Metrics", "password": PASSWORD, "passwordConfirm": PASSWORD}
        assert requests.post(server.url + REGISTER, json=body, timeout=30).status_code == 201

        sent = 0
        with ThreadPoolExecutor(max_workers=BATCH) as pool:
            for batch in range(10):  # until both workers have served logins
                list(pool.map(log_in, [server.url] * BATCH))
                sent += BATCH
                by_worker = logins_by_worker(directory, tmp_path / f"batch-{batch}")
                if sum(1 for count in by_worker.values() if count) >= 2:
                    break
        assert sum(1 for count in by_worker.values() if count) == 2, by_worker
        assert sum(by_worker.values()) == sent

        for _ in range(4):  # each scrape is answered by either worker: every one has the sum
            assert logins(server.url) == sent

        victim = max(by_worker, key=by_worker.get)
        os.kill(victim, signal.SIGTERM)  # gunicorn starts another in its place
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(list(directory.glob("counter_*.db"))) < 3:
            time.sleep(0.1)
        assert len(list(directory.glob("counter_*.db"))) == 3
        for _ in range(4):
            assert logins(server.url) == sent
    assert not directory.exists()  # removed when gunicorn stopped


def test_a_named_metrics_directory_is_emptied_at_start_and_kept(tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"counts of an earlier run")
    env = {"METRICS_ENABLED": "true", "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    with serving(tmp_path, workers=2, env=env) as server:
        assert not (directory / "counter_1.db").exists()
        assert logins(server.url) == 0
    assert directory.is_dir()


def test_metrics_are_off_unless_enabled(live_server_url):
    response = requests.get(live_server_url + METRICS, timeout=30)
    assert response.status_code == 404
    assert response.json() == {"status": "fail", "message": "Not found"}
