"""After a restart of the local stack: records an earlier version stored are brought up to date
(`upgrade_stored_records`), and what the previous run accepted is finished or started again.

The tables come back whole (journal.py); the queues and the Step Functions executions do not,
moto kept them in the memory of the process that ended. So, before the pollers and the API start:

1. every agent's queue is created again (deploys are about to be handed to them);
2. every deploy slot is freed (its execution is gone; a re-run sync job starts a new execution
   under its own name, since moto forgot the old one);
3. each deploy that was in flight (the application `syncing`) ends `out_of_sync` "interrupted by
   restart" through the one interpreter (`record_outcome`), and a new deploy of the same commit
   (its target) starts at once, for the same trigger, so an accepted push still lands;
4. a removal in flight (a delete was accepted) starts again: a delete wins; other history entries
   left running end failed "interrupted by restart";
5. every sync job still `queued` or `running` in the jobs table is queued again as it was queued,
   oldest first; a repository left `syncing` stays so when one of its jobs is re-run (that job
   ends it), and otherwise ends `failed` "interrupted by restart".

The poller's sweeper (deploy/sweep.py) would also start such deploys again, after a grace
period and under their old request; a restart knows at once that nothing is running any more.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_lambda_powertools import Logger

from ferry.aws.queues import ensure_agent_queue, send_sync_job
from ferry.deploy.removal import start_undeploy
from ferry.deploy.result import record_outcome
from ferry.deploy.status import update_application_status
from ferry.domain.messages import SyncJob
from ferry.domain.models import (
    Application,
    ApplicationEvent,
    ApplicationSyncStatus,
    EventStatus,
    EventType,
    Repository,
    RepositorySyncStatus,
    Trigger,
    utcnow,
)
from ferry.domain.outcomes import interpret_transport_error
from ferry.errors import Conflict, FerryError, NotFound
from ferry.manage.applications import redeploy_application
from ferry.store.agents import list_agents
from ferry.store.applications import clear_deploy_slot, list_applications
from ferry.store.events import EVENTS_KEPT, add_event, complete_event, list_events
from ferry.store.jobs import list_unfinished_jobs, record_finished, record_requeued
from ferry.store.repositories import list_repositories, move_url_credentials
from ferry.store.rotation import reindex_names
from ferry.sync.status import update_repository_status

logger = Logger(service="ferry-local", child=True)

INTERRUPTED = "interrupted by restart"
RESTART_ACTOR = "ferry up (after a restart)"


@dataclass
class Recovery:
    """What a restart found unfinished and what it did about it."""

    interrupted: list[str] = field(default_factory=list)  # applications whose deploy ended
    redeployed: list[str] = field(default_factory=list)  # ... and were deployed again
    removals: list[str] = field(default_factory=list)  # applications whose removal restarted
    requeued: list[str] = field(default_factory=list)  # sync job ids queued again
    repositories_failed: list[str] = field(default_factory=list)

    def summary(self) -> str | None:
        """One line for a person, or None when nothing was left unfinished."""
        parts = []
        if self.interrupted:
            parts.append(
                f"{len(self.interrupted)} deploy(s) interrupted, {len(self.redeployed)} "
                "started again"
            )
        if self.removals:
            parts.append(f"{len(self.removals)} removal(s) started again")
        if self.requeued:
            parts.append(f"{len(self.requeued)} sync job(s) queued again")
        if self.repositories_failed:
            parts.append(f"{len(self.repositories_failed)} repository sync(s) ended failed")
        return "; ".join(parts) or None


def upgrade_stored_records() -> None:
    """Before the restored tables are used: credentials out of repository URLs (into the
    encrypted credentials) and name guards under the current normalization (NFKC)."""
    move_url_credentials()
    reindex_names()


def recover_interrupted_work() -> Recovery:
    """Steps 1 to 5 above; call once the tables are back and before anything takes work."""
    recovery = Recovery()
    for agent in list_agents():
        ensure_agent_queue(agent.id)
    for application in list_applications():
        try:
            recover_application(application, recovery)
        except FerryError:
            # One application's records must not keep the stack from starting; it is logged.
            logger.exception("could not recover application", extra={"id": application.id})
    requeued = requeue_jobs(list_unfinished_jobs(), recovery)
    end_abandoned_syncs(list_repositories(), requeued, recovery)
    if recovery.summary():
        logger.info("work interrupted by the restart", extra={"recovery": recovery.summary()})
    return recovery


def recover_application(application: Application, recovery: Recovery) -> None:
    """Steps 2 to 4 for one application: free its slot, end what it was doing, start it again."""
    clear_deploy_slot(application.id)
    history = list_events(application.id, limit=EVENTS_KEPT)
    interrupted = application.sync_status is ApplicationSyncStatus.SYNCING
    if interrupted:
        _end_interrupted_deploy(application, history)
        recovery.interrupted.append(application.id)
    for event in history:  # those `record_outcome` just finished are no longer running
        if event.status is EventStatus.RUNNING and event.request_id:
            complete_event(application.id, event.request_id, EventStatus.FAILED, error=INTERRUPTED)
    if application.removal_request_id is not None:
        start_undeploy(application, application.removal_request_id, actor=RESTART_ACTOR)
        recovery.removals.append(application.id)
    elif interrupted:
        try:
            redeploy_application(
                application.id,
                actor=RESTART_ACTOR,
                trigger=application.current_trigger or Trigger.MANUAL,
            )
        except Conflict:
            return  # never synced: its sync job, queued again below, deploys it
        recovery.redeployed.append(application.id)


def _end_interrupted_deploy(application: Application, history: list[ApplicationEvent]) -> None:
    change = interpret_transport_error(INTERRUPTED)
    current = application.current_request_id
    if current is not None and application.removal_request_id is None:
        if not any(e.request_id == current and e.type is EventType.DEPLOYMENT for e in history):
            # It had not yet reached its running history entry: say in the history that it was
            # accepted and interrupted, not only in a status the redeploy soon replaces.
            add_event(
                ApplicationEvent(
                    application_id=application.id,
                    type=EventType.DEPLOYMENT,
                    trigger=application.current_trigger or Trigger.MANUAL,
                    status=EventStatus.FAILED,
                    commit=application.desired_commit,
                    request_id=current,
                    error=INTERRUPTED,
                    finished_at=utcnow(),
                )
            )
        if record_outcome(application.id, current, change).get("applied"):
            return
    # No deploy request to end through (or a delete took its place): the status says it alone.
    update_application_status(
        application.id,
        {"sync_status": change.sync_status, "last_sync_error": change.last_sync_error},
    )


def requeue_jobs(jobs: list[SyncJob], recovery: Recovery) -> set[str]:
    """Step 5: queue these (unfinished) jobs again, in order; returns their repositories."""
    requeued_repositories: set[str] = set()
    for job in jobs:
        try:
            record_requeued(job.job_id)
            send_sync_job(job)
        except FerryError as exc:
            # Never left `queued` with nothing queued: it ends, and says why.
            record_finished(
                job, ok=False, error=f"{INTERRUPTED}; not queued again: {exc}", result=None
            )
            continue
        recovery.requeued.append(job.job_id)
        requeued_repositories.add(job.repository_id)
    return requeued_repositories


def end_abandoned_syncs(
    repositories: list[Repository], requeued: set[str], recovery: Recovery
) -> None:
    """Step 5: a repository left `syncing` ends `failed`, unless a job of its was queued again
    (that job ends the sync)."""
    for repository in repositories:
        if repository.sync_status is RepositorySyncStatus.SYNCING and repository.id not in requeued:
            try:
                update_repository_status(
                    repository.id, RepositorySyncStatus.FAILED, error=INTERRUPTED
                )
            except NotFound:
                continue
            recovery.repositories_failed.append(repository.id)
