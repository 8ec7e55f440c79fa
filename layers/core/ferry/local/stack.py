"""The whole local stack as one object: cloud + bootstrap + local agent. Used by `ferry up`,
`ferry demo` and the end-to-end tests."""

from __future__ import annotations

from collections.abc import Callable

from ferry.local.agent_process import AgentProcess
from ferry.local.bootstrap import LocalState, bootstrap, renew_agent_token
from ferry.local.cloud import LocalCloud, LocalOptions


class LocalStack:
    def __init__(
        self,
        options: LocalOptions,
        *,
        start_agent: bool = True,
        echo_agent: Callable[[str], None] | None = None,
    ) -> None:
        self.cloud = LocalCloud(options)
        self.home = self.cloud.home
        self.start_agent = start_agent
        self.echo_agent = echo_agent
        self.agent: AgentProcess | None = None
        self.state: LocalState | None = None

    @property
    def api_url(self) -> str:
        return self.cloud.api_url

    def start(self) -> LocalState:
        try:
            self.cloud.start()
            self.state = bootstrap(self.home, self.cloud.api_url)
            if self.start_agent:
                self.start_local_agent()
        except BaseException:
            self.stop()
            raise
        return self.state

    def start_local_agent(self) -> AgentProcess:
        """Start the local agent (from a thread that lives as long as the stack: the agent stops
        when that thread ends, see agent_process.py)."""
        state = self.state
        assert state is not None
        self.agent = AgentProcess(
            api_url=self.cloud.api_url,
            token=state.agent_token,
            deployments_dir=self.home / "deployments",
            log_path=self.home / "logs" / "agent.log",
            echo=self.echo_agent,
            pid_path=self.home / "agent.pid",
            renew_token=lambda: renew_agent_token(self.home, state.agent_id),
        )
        self.agent.start()
        return self.agent

    def stop(self) -> None:
        if self.agent is not None:
            self.agent.stop()
        self.cloud.stop()
