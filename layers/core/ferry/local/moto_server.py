"""moto in server mode on loopback, with Step Functions really executing ASL."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import httpx
from moto.server import ThreadedMotoServer

from ferry.local import emulator_costs, in_process_transport, moto_fixes
from ferry.local.iam import set_moto_auth
from ferry.local.serialized_dynamodb import serialize_dynamodb

LOCAL_ACCOUNT_ID = "123456789012"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MotoServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.running = False

    def start(self) -> None:
        # The ASL interpreter sends its service calls (lambda:invoke, sqs:sendMessage) to
        # localhost:$MOTO_PORT, so it must name this server before it starts.
        os.environ["MOTO_PORT"] = str(self.port)
        serialize_dynamodb()
        emulator_costs.install()
        moto_fixes.install()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server.start()
        self.running = True
        in_process_transport.register(self.url, self._wsgi_application())
        # The stack is built unchecked (the cloud turns IAM checks on once it stands); a stack
        # this process ran before may have left them on, and the switch is process-wide.
        set_moto_auth(self.url, enabled=False)
        response = httpx.post(
            f"{self.url}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}},
            timeout=10,
        )
        response.raise_for_status()

    def _wsgi_application(self) -> Any:
        # The server's own application (moto is pinned exactly; its test covers this attribute).
        server = self._server._server
        if server is None:
            raise RuntimeError("the moto server did not start")
        return server.app

    def stop(self) -> None:
        in_process_transport.unregister(self.url)
        self._server.stop()
        self.running = False
