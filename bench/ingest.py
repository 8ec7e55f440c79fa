"""Webhook ingest (issue 17, second row): how many deliveries the API accepts a second with 12
client threads, against a bare FastAPI endpoint answering 202 under the same uvicorn setup in
the same process; and the p99 accept latency with 30 deliveries in flight at once.

Every delivery carries its own delivery id, so each is verified, counted against the rate
limit, logged and queued as its own job, as a real burst of pushes would be. The rate limit
is raised for the run (bench/harness.py). The repository has no applications: the syncs
behind the deliveries do little.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable

import httpx

from bench.harness import running_stack
from bench.report import Row, percentile

SECONDS = float(os.environ.get("FERRY_BENCH_INGEST_SECONDS", "3"))
THREADS = 12
CONCURRENT = 30
PER_CLIENT = 2
RATIO_GOAL = 0.3
P99_GOAL_S = 1.0


def _rate(post: Callable[[httpx.Client], int], threads: int, seconds: float) -> float:
    done = [0] * threads
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        with httpx.Client(timeout=30) as http:
            while time.monotonic() < stop:
                status = post(http)
                assert status in (200, 202), status
                done[i] += 1

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done) / (time.monotonic() - started)


def _latencies(post: Callable[[httpx.Client], int], clients: int, each: int) -> list[float]:
    samples: list[float] = []
    lock = threading.Lock()
    gate = threading.Barrier(clients)

    def client() -> None:
        with httpx.Client(timeout=60) as http:
            gate.wait()
            for _ in range(each):
                started = time.perf_counter()
                status = post(http)
                assert status in (200, 202), status
                with lock:
                    samples.append(time.perf_counter() - started)

    workers = [threading.Thread(target=client) for _ in range(clients)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return samples


def _bare_endpoint() -> tuple[str, Callable[[], None]]:
    import uvicorn
    from fastapi import FastAPI

    from ferry.local.moto_server import free_port

    app = FastAPI()

    @app.post("/hook/{repository_id}", status_code=202)
    async def hook(repository_id: str) -> dict[str, str]:
        return {"job_id": repository_id}

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=5)

    return f"http://127.0.0.1:{port}/hook/bench", stop


def measure() -> list[Row]:
    from ferry.local.sample import create_sample_repository

    bare_url, stop_bare = _bare_endpoint()
    try:
        with running_stack() as stack:
            repo_path = stack.home / "repo"
            create_sample_repository(repo_path, "busybox:1.36")
            repository = stack.repository(repo_path)
            url = f"{stack.cloud.api_url}/api/v1/webhooks/repositories/{repository['id']}"
            secret = repository["webhook_secret"]

            def deliver(http: httpx.Client) -> int:
                return http.post(
                    url,
                    headers={
                        "Authorization": f"Bearer {secret}",
                        "Idempotency-Key": uuid.uuid4().hex,
                    },
                    json={"branch": "main"},
                ).status_code

            def bare(http: httpx.Client) -> int:
                return http.post(bare_url, json={"branch": "main"}).status_code

            # The bare endpoint first, on a quiet stack: measured after Ferry's deliveries it
            # would share the process with the syncs they queued and read low (a third of its
            # quiet rate in one run), flattering the ratio.
            _rate(bare, 2, 0.5)
            bare_rate = _rate(bare, THREADS, SECONDS)
            bare_latency = _latencies(bare, CONCURRENT, PER_CLIENT)
            _rate(deliver, 2, 0.5)
            ferry_rate = _rate(deliver, THREADS, SECONDS)
            ferry_latency = _latencies(deliver, CONCURRENT, PER_CLIENT)
    finally:
        stop_bare()
    ratio = round(ferry_rate / bare_rate, 3)
    p99 = percentile(ferry_latency, 0.99)
    return [
        Row(
            figure=f"webhook ingest, {THREADS} client threads",
            ferry=f"{ferry_rate:.1f}/s",
            baseline=f"{bare_rate:.0f}/s (bare FastAPI 202)",
            ratio=ratio,
            goal=f">= {RATIO_GOAL:g}x",
            met=ratio >= RATIO_GOAL,
            details={"seconds": SECONDS},
        ),
        Row(
            figure=f"webhook p99 accept latency, {CONCURRENT} concurrent",
            ferry=f"{p99 * 1000:.0f} ms",
            baseline=f"{percentile(bare_latency, 0.99) * 1000:.0f} ms (bare FastAPI 202)",
            ratio=round(p99 / percentile(bare_latency, 0.99), 1),
            goal=f"<= {P99_GOAL_S * 1000:.0f} ms",
            met=p99 <= P99_GOAL_S,
            details={
                "median_ms": round(percentile(ferry_latency, 0.5) * 1000, 1),
                "requests": len(ferry_latency),
            },
        ),
    ]
