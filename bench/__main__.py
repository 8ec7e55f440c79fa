"""`make bench`: ratios against a baseline measured in the same run, so results compare across
machines.

- Cold start (bench/cold_start.py): importing the API handler and the deploy tasks' handlers in a
  fresh interpreter, against a bare import of the libraries they are built on.
- The spine: how long a webhook takes to become a deploy job on the agent's queue, against a
  plain SQS send → receive round trip on the same embedded moto.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # no EMF lines among the results

ROUNDS = int(os.environ.get("FERRY_BENCH_ROUNDS", "15"))
COMPOSE = "services:\n  web:\n    image: busybox:1.36\n    command: [sleep, '{round_number}']\n"


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def cold_start() -> None:
    from bench.cold_start import FIGURES, measure, table

    rows = [measure(figure) for figure in FIGURES]
    print(table(rows))
    _write("cold_start.json", rows)


def _write(name: str, result: object) -> None:
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / name).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


def spine() -> None:
    import boto3
    import httpx

    from ferry.domain.messages import DeployMessage, DeployRequest
    from ferry.local.cloud import LocalCloud, LocalOptions
    from ferry.local.sample import commit_file, create_sample_repository
    from ferry.store.tokens import create_api_token

    home = Path(tempfile.mkdtemp(prefix="ferry-bench-"))
    cloud = LocalCloud(LocalOptions(home=home, api_port=0))
    cloud.start()
    try:
        sqs, sfn = boto3.client("sqs"), boto3.client("stepfunctions")
        api = httpx.Client(
            base_url=f"{cloud.api_url}/api/v1",
            headers={"Authorization": f"Bearer {create_api_token('bench')}"},
            timeout=30,
        )
        repo_path = home / "repo"
        create_sample_repository(repo_path, "busybox:1.36")
        repository = api.post("/repositories", json={"url": f"file://{repo_path}"}).json()
        agent = api.post("/agents", json={"name": "bench"}).json()
        from ferry.store.agents import get_agent

        queue = get_agent(agent["id"]).queue_url
        api.post(
            "/applications",
            json={
                "name": "bench",
                "repository_id": repository["id"],
                "agent_id": agent["id"],
                "path": "hello/compose.yaml",
            },
        )

        def take(commit: str | None) -> None:
            while True:
                for message in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get(
                    "Messages", []
                ):
                    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
                    deploy = DeployMessage.model_validate_json(message["Body"])
                    job = deploy.request
                    assert isinstance(job, DeployRequest)
                    sfn.send_task_success(
                        taskToken=deploy.task_token,
                        output=json.dumps(
                            {
                                "request_id": job.request_id,
                                "application_id": job.application_id,
                                "success": True,
                            }
                        ),
                    )
                    if commit is None or job.commit == commit:
                        return

        take(None)  # the application's first deploy
        spine: list[float] = []
        for round_number in range(ROUNDS):
            commit = commit_file(
                repo_path,
                "hello/compose.yaml",
                COMPOSE.format(round_number=round_number),
                f"round {round_number}",
            )
            started = time.perf_counter()
            response = api.post(
                f"/webhooks/repositories/{repository['id']}",
                headers={"Authorization": f"Bearer {repository['webhook_secret']}"},
            )
            assert response.status_code == 202, response.text
            take(commit)
            spine.append(time.perf_counter() - started)

        baseline_queue = sqs.create_queue(QueueName="bench-baseline")["QueueUrl"]
        baseline: list[float] = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            sqs.send_message(QueueUrl=baseline_queue, MessageBody="x")
            while not (
                got := sqs.receive_message(QueueUrl=baseline_queue, WaitTimeSeconds=1).get(
                    "Messages"
                )
            ):
                pass
            sqs.delete_message(QueueUrl=baseline_queue, ReceiptHandle=got[0]["ReceiptHandle"])
            baseline.append(time.perf_counter() - started)
    finally:
        cloud.stop()

    result = {
        "benchmark": "webhook → deploy job on the agent's queue",
        "rounds": ROUNDS,
        "median_ms": _median_ms(spine),
        "baseline": "SQS send → receive round trip on the same moto",
        "baseline_median_ms": _median_ms(baseline),
        "ratio": round(statistics.median(spine) / statistics.median(baseline), 1),
    }
    _write("spine.json", result)
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    print()


def main() -> None:
    cold_start()  # first: the local stack would weigh on its figures
    spine()


if __name__ == "__main__":
    main()
