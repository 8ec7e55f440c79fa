"""X-Ray traces of the functions (Powertools Tracer; `Tracing: Active` in template.yaml).

Only the AWS SDK is patched: every DynamoDB, SQS, Step Functions and STS call becomes a subsegment
of the invocation's trace. Patching the HTTP libraries too would import them (httpx, requests) at
every cold start, though only some paths use them. Outside Lambda the tracer does nothing (the
local cloud also sets POWERTOOLS_TRACE_DISABLED).
"""

from __future__ import annotations

from aws_lambda_powertools import Tracer

tracer = Tracer(patch_modules=("botocore",))
