"""Run Lambda functions in this process instead of in Docker containers.

moto runs Lambda code in containers pulled from public registries, which a local machine may not
reach and which would cost seconds per call. Every invoke path in moto (the Invoke API, Step
Functions' `lambda:invoke`, event source mappings) goes through one private method,
`LambdaFunction._invoke_lambda`; we replace it with a call of the handler named in template.yaml.
It is private, so moto is pinned exactly in pyproject.toml and tests/integration covers this.
Each call runs as the function's own role, as on Lambda (see iam.py).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.credentials import Credentials
from moto.awslambda.models import LambdaFunction

from ferry.local.iam import acting_as
from ferry.local.template import FunctionSpec

Handler = Callable[[Any, Any], Any]


@dataclass
class LocalLambdaContext:
    """The parts of Lambda's context object that our handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


class InProcessLambdas:
    """Registry of function name → handler, and the patch that makes moto call them."""

    def __init__(self, role_credentials: Callable[[str], Credentials]) -> None:
        """`role_credentials`: a role's ARN → the credentials its functions call AWS with."""
        self._role_credentials = role_credentials
        self._specs: dict[str, FunctionSpec] = {}
        self._handlers: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._original: Any = None
        self._closed = False

    def register(self, function_name: str, spec: FunctionSpec) -> None:
        with self._lock:
            self._specs[function_name] = spec
            self._handlers.pop(function_name, None)

    def handler_for(self, function_name: str) -> Handler:
        with self._lock:
            if function_name not in self._handlers:
                spec = self._specs[function_name]
                module = importlib.import_module(spec.module)
                self._handlers[function_name] = getattr(module, spec.attribute)
            return self._handlers[function_name]

    def invoke(self, function: Any, event: Any) -> tuple[str, bool, str]:
        """Call the function's handler; the return shape is moto's (payload, errored, logs)."""
        if self._closed:
            # An execution that outlived its stack (moto's interpreter threads run on): answer
            # as a function error instead of writing to tables that are gone.
            stopped = {"errorMessage": "the local stack has stopped", "errorType": "StackStopped"}
            return json.dumps(stopped), True, ""
        if isinstance(event, str | bytes):
            event = json.loads(event or "{}")
        context = LocalLambdaContext(
            function_name=function.function_name,
            invoked_function_arn=function.function_arn,
            memory_limit_in_mb=int(function.memory_size),
            timeout_seconds=int(function.timeout),
            log_group_name=f"/aws/lambda/{function.function_name}",
        )
        # Lambda's runtime gives the handler's thread an event loop (Mangum relies on it); moto
        # calls us from a fresh request thread, so lend it one for the call.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            with acting_as(self._role_credentials(function.role)):
                result = self.handler_for(function.function_name)(event, context)
        except Exception as exc:  # Lambda reports every exception as a function error
            error = {
                "errorMessage": str(exc),
                "errorType": type(exc).__name__,
                "stackTrace": traceback.format_exception(exc),
            }
            return json.dumps(error), True, ""
        finally:
            asyncio.set_event_loop(None)
            loop.close()
        return json.dumps(result, default=str), False, ""

    def install(self) -> None:
        """Replace moto's container invoke with an in-process call (idempotent)."""
        self._closed = False
        if self._original is not None:
            return
        self._original = LambdaFunction._invoke_lambda
        registry = self

        def _invoke_lambda(function: Any, event: Any = None) -> tuple[str, bool, str]:
            return registry.invoke(function, event)

        LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        """Stop running handlers. The patch itself stays: moto's own invoke would start Docker
        containers for executions still running in this process, which nothing here wants; a
        later stack's `install` replaces it."""
        self._closed = True
