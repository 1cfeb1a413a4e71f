"""How many authenticated GETs per second the Falcon emulator answers.

One keep-alive ``requests.Session``, then the same with several threads (a session each).
Every run is bounded by a request count and a time limit. Rate budgets are off: this measures
the emulator, not Falcon's 6,000-per-minute limit.

    python benchmarks/emulator_throughput.py [--requests 3000] [--seconds 10] [--threads 4]
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Sequence

import requests

from requests_falcon_auth.testing import FalconEmulator

_PATH = "/devices/queries/devices/v1"
_WARMUP = 50


def _fetch_token(session: requests.Session, base_url: str) -> str:
    form = {"client_id": "bench", "client_secret": "bench-secret"}
    response = session.post(base_url + "/oauth2/token", data=form)
    response.raise_for_status()
    return str(response.json()["access_token"])


def _hammer(session: requests.Session, url: str, count: int, deadline: float) -> int:
    """GETs ``url`` up to ``count`` times or until ``deadline``; returns how many were done."""
    done = 0
    while done < count and time.perf_counter() < deadline:
        response = session.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"unexpected {response.status_code}: {response.text[:200]}")
        done += 1
    return done


def one_session(url: str, token: str, count: int, seconds: float) -> tuple[int, float]:
    """Requests done and seconds taken over one keep-alive session."""
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        _hammer(session, url, _WARMUP, time.perf_counter() + seconds)
        started = time.perf_counter()
        done = _hammer(session, url, count, started + seconds)
        return done, time.perf_counter() - started


def threaded(url: str, token: str, count: int, seconds: float, threads: int) -> tuple[int, float]:
    """Requests done and seconds taken by ``threads`` sessions sharing the request budget."""
    results = [0] * threads
    clock: dict[str, float] = {}

    def go() -> None:  # runs once, when every thread is at the barrier
        clock["started"] = time.perf_counter()
        clock["deadline"] = clock["started"] + seconds

    ready = threading.Barrier(threads + 1, action=go)

    def worker(index: int) -> None:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {token}"
            _hammer(session, url, _WARMUP // threads + 1, time.perf_counter() + seconds)
            ready.wait()
            results[index] = _hammer(session, url, count // threads, clock["deadline"])

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    ready.wait()
    for thread in workers:
        thread.join()
    return sum(results), time.perf_counter() - clock["started"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per run")
    parser.add_argument("--seconds", type=float, default=10.0, help="time limit per run")
    parser.add_argument("--threads", type=int, default=4, help="threads for the second run")
    args = parser.parse_args(argv)

    with FalconEmulator(regions=("us-1",), rate_limits=False) as emulator:
        emulator.add_client("bench", "bench-secret", region="us-1")
        base_url = emulator.base_url("us-1")
        with requests.Session() as session:
            token = _fetch_token(session, base_url)
        url = base_url + _PATH
        done, took = one_session(url, token, args.requests, args.seconds)
        # Falcon would cap one customer at 100 calls a second: this measures the emulator's
        # own capacity, so its budgets are off, and the figures say so.
        print(
            f"1 keep-alive session: {done / took:,.0f} requests/s ({done} in {took:.2f} s; "
            "rate budgets off)"
        )
        if args.threads > 1:
            done, took = threaded(url, token, args.requests, args.seconds, args.threads)
            print(
                f"{args.threads} threads, a session each: {done / took:,.0f} requests/s "
                f"({done} in {took:.2f} s; rate budgets off)"
            )
        counters = emulator.counters
        print(f"emulator counted {counters.api_ok} OK calls, {counters.api_calls} in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
