"""Stands in for Lambda's SQS event source mapping: receive, invoke, delete what succeeded.

moto's own mapping invokes synchronously inside SendMessage and re-delivers whole batches; this
poller behaves like AWS: long-polls, honours ReportBatchItemFailures, and leaves failed records to
their visibility timeout (and, after maxReceiveCount, the dead-letter queue).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import boto3
from aws_lambda_powertools import Logger

logger = Logger(service="ferry-local", child=True)


class QueuePoller:
    def __init__(
        self,
        *,
        queue_url: str,
        queue_arn: str,
        function_name: str,
        batch_size: int,
        report_batch_item_failures: bool,
        region: str,
        sqs_client: Any = None,
        lambda_client: Any = None,
    ) -> None:
        """`sqs_client` reads the queue (Lambda uses the function's role), `lambda_client`
        invokes; both default to this process's own credentials."""
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.function_name = function_name
        self.batch_size = min(batch_size, 10)
        self.report_batch_item_failures = report_batch_item_failures
        self.region = region
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"poller-{function_name}", daemon=True
        )
        self._sqs = sqs_client or boto3.client("sqs")
        self._lambda = lambda_client or boto3.client("lambda")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(wait_seconds=1)
            except Exception:
                logger.exception("queue poller failed; retrying", extra={"queue": self.queue_url})
                self._stop.wait(1)

    def _event(self, messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": m.get("MessageAttributes", {}),
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": self.region,
                }
                for m in messages
            ]
        }

    def poll_once(self, wait_seconds: int = 0) -> int:
        """One receive → invoke → delete round; returns how many records succeeded."""
        received = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = received.get("Messages", [])
        if not messages:
            return 0
        response = self._lambda.invoke(
            FunctionName=self.function_name, Payload=json.dumps(self._event(messages)).encode()
        )
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            logger.error("the function failed the whole batch", extra={"error": payload})
            return 0
        failed: set[str] = set()
        if self.report_batch_item_failures and isinstance(payload, dict):
            failed = {f["itemIdentifier"] for f in payload.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return len(done)
