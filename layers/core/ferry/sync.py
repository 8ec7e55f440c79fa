"""Repository sync (layer 1): the one path every trigger funnels into.

`sync_applications` marks the repository syncing, resolves each branch's commit once, reads each
application's compose file at that exact commit and hands a deploy to every application whose file
changed (or whose last deploy did not succeed), then marks the repository success or failed.
Repository `success` means "dispatched", not "deployed": deploys finish in their own executions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from aws_lambda_powertools import Logger

from ferry.deploys import deploy_request_id, start_deploy
from ferry.domain.messages import SyncJob
from ferry.domain.models import (
    Application,
    ApplicationEvent,
    ApplicationSyncStatus,
    CommitInfo,
    EventStatus,
    EventType,
    Repository,
    RepositorySyncStatus,
    SyncOrigin,
    utcnow,
)
from ferry.errors import FerryError, GitError, NotFound
from ferry.git import GitSource, open_source
from ferry.notifications import notify_targets
from ferry.status import update_application_status, update_repository_status
from ferry.store.applications import list_repository_applications
from ferry.store.events import add_event
from ferry.store.jobs import record_finished, record_running
from ferry.store.repositories import get_repository

logger = Logger(child=True)

Resolver = Callable[[str], CommitInfo]


class AppSyncResult(StrEnum):
    DEPLOYING = "deploying"
    NO_CHANGE = "no_change"
    UP_TO_DATE = "up_to_date"  # polling found the commit already recorded: nothing done
    FAILED = "failed"


@dataclass
class SyncReport:
    """What one repository sync did, per application."""

    repository_id: str
    status: RepositorySyncStatus = RepositorySyncStatus.SYNCING
    error: str | None = None
    commits: dict[str, str] = field(default_factory=dict)  # branch → resolved SHA
    applications: dict[str, AppSyncResult] = field(default_factory=dict)
    deploy_requests: dict[str, str] = field(default_factory=dict)  # application id → request id

    def summary(self) -> dict[str, object]:
        """A JSON-ready account of the sync (kept on the job, returned by idempotent replays)."""
        return {
            "repository_status": self.status.value,
            "error": self.error,
            "commits": self.commits,
            "applications": {k: v.value for k, v in self.applications.items()},
            "deploy_requests": self.deploy_requests,
        }


@dataclass(frozen=True)
class Trigger:
    """Why a sync runs: its origin (the events' source), its id (names deploys) and who asked."""

    origin: SyncOrigin
    trigger_id: str
    actor: str | None = None


def _record(
    application: Application, trigger: Trigger, status: EventStatus, **details: str | None
) -> None:
    add_event(
        ApplicationEvent(
            application_id=application.id,
            type=EventType.COMMIT_SYNC,
            source=trigger.origin,
            status=status,
            actor=trigger.actor,
            finished_at=utcnow(),
            **details,
        )
    )


def _notify_sync_failure(application: Application, reason: str) -> None:
    if application.notification_ids:
        notify_targets(
            application.notification_ids,
            f"Ferry: {application.name} could not be synced",
            f"Syncing {application.name} ({application.path} on {application.branch}): {reason}",
        )


def _needs_deploy(application: Application, compose_file: str) -> bool:
    # An unchanged file needs no deploy, unless the last deploy did not succeed (then a push is
    # how a user recovers a failed application) or none ever ran.
    if compose_file != application.compose_file:
        return True
    return application.sync_status not in (
        ApplicationSyncStatus.SYNCED,
        ApplicationSyncStatus.SYNCING,
    )


def _sync_application(
    application: Application,
    commit: CommitInfo,
    trigger: Trigger,
    source: GitSource,
    report: SyncReport,
) -> None:
    if trigger.origin is SyncOrigin.REPOSITORY_POLLING and application.commit == commit.sha:
        report.applications[application.id] = AppSyncResult.UP_TO_DATE
        return
    compose_file = source.read_file(commit.sha, application.path)

    if not _needs_deploy(application, compose_file):
        changes: dict[str, object] = {"commit": commit.sha, "commit_message": commit.message}
        if application.sync_status is ApplicationSyncStatus.SYNCED:
            changes["last_sync_error"] = None
        update_application_status(application.id, changes)
        _record(
            application,
            trigger,
            EventStatus.NO_CHANGE,
            commit=commit.sha,
            message=f"{application.path} unchanged at {commit.sha[:12]}",
        )
        report.applications[application.id] = AppSyncResult.NO_CHANGE
        return

    request_id = deploy_request_id(application.id, commit.sha, trigger.trigger_id)
    changed = compose_file != application.compose_file
    recorded = update_application_status(
        application.id,
        {
            "compose_file": compose_file,
            "previous_compose_file": (
                application.compose_file if changed else application.previous_compose_file
            ),
            "commit": commit.sha,
            "commit_message": commit.message,
            "current_request_id": request_id,
        },
    )
    _record(
        application,
        trigger,
        EventStatus.SUCCEEDED,
        commit=commit.sha,
        request_id=request_id,
        message=f"{application.path} {'changed' if changed else 'redeployed'} at {commit.sha[:12]}",
    )
    start_deploy(recorded, request_id, trigger.origin, actor=trigger.actor)
    report.applications[application.id] = AppSyncResult.DEPLOYING
    report.deploy_requests[application.id] = request_id


def sync_applications(
    repo: Repository,
    apps: list[Application],
    resolve: Resolver,
    origin: SyncOrigin,
    *,
    source: GitSource,
    trigger_id: str,
    actor: str | None = None,
) -> SyncReport:
    """Sync `apps` of `repo`: resolve once per branch, deploy what changed, record the outcome.

    A branch whose commit cannot be resolved records a failed event on each of its applications;
    the other branches still proceed. The repository ends `success` or `failed` (the last error
    wins). Applications with an empty branch are skipped.
    """
    trigger = Trigger(origin=origin, trigger_id=trigger_id, actor=actor)
    report = SyncReport(repository_id=repo.id)
    update_repository_status(repo.id, RepositorySyncStatus.SYNCING)

    by_branch: dict[str, list[Application]] = {}
    for application in apps:
        if application.branch.strip():
            by_branch.setdefault(application.branch, []).append(application)

    for branch, branch_apps in by_branch.items():
        try:
            commit = resolve(branch)
        except GitError as exc:
            report.error = f"branch {branch}: {exc}"
            for application in branch_apps:
                _record(application, trigger, EventStatus.FAILED, error=report.error)
                report.applications[application.id] = AppSyncResult.FAILED
                _notify_sync_failure(application, report.error)
            continue
        report.commits[branch] = commit.sha
        for application in branch_apps:
            try:
                _sync_application(application, commit, trigger, source, report)
            except FerryError as exc:
                report.error = f"application {application.name}: {exc}"
                report.applications[application.id] = AppSyncResult.FAILED
                _record(application, trigger, EventStatus.FAILED, commit=commit.sha, error=str(exc))
                update_application_status(
                    application.id,
                    {"sync_status": ApplicationSyncStatus.OUT_OF_SYNC, "last_sync_error": str(exc)},
                )
                _notify_sync_failure(application, str(exc))

    if report.error is None:
        report.status = RepositorySyncStatus.SUCCESS
        update_repository_status(repo.id, report.status, synced_at=utcnow())
    else:
        report.status = RepositorySyncStatus.FAILED
        update_repository_status(repo.id, report.status, error=report.error)
    logger.info(
        "repository synced",
        extra={
            "repository_id": repo.id,
            "status": report.status,
            "error": report.error,
            "commits": report.commits,
        },
    )
    return report


def _resolver_for(job: SyncJob, source: GitSource) -> Resolver:
    pinned = job.commit
    if pinned is None:
        return source.latest_commit
    # The trigger named the commit: each branch resolves to it, once it is known to exist.
    return lambda _branch: source.commit(pinned)


def _nothing_new(apps: list[Application], resolve: Resolver) -> tuple[bool, Resolver]:
    """For polling: resolve each branch once; True when every application is already there.

    Returns a resolver that answers from what was resolved, so the sync that may follow
    resolves nothing twice (and a branch that failed fails the same way again).
    """
    resolved: dict[str, CommitInfo | GitError] = {}
    for branch in {a.branch for a in apps if a.branch.strip()}:
        try:
            resolved[branch] = resolve(branch)
        except GitError as exc:
            resolved[branch] = exc

    def cached(branch: str) -> CommitInfo:
        outcome = resolved[branch]
        if isinstance(outcome, GitError):
            raise outcome
        return outcome

    up_to_date = all(
        isinstance(resolved.get(a.branch), CommitInfo) and a.commit == cached(a.branch).sha
        for a in apps
        if a.branch.strip()
    )
    return up_to_date, cached


def run_sync_job(job: SyncJob) -> SyncReport | None:
    """Handle one sync job from the queue. None when there was nothing to do (its repository
    is gone, or a poll found every application at its branch's commit)."""
    record_running(job.job_id)
    try:
        repo = get_repository(job.repository_id)
    except NotFound:
        logger.warning("sync job for a deleted repository dropped", extra={"job_id": job.job_id})
        record_finished(job.job_id, ok=True, error=None, result={"skipped": "repository deleted"})
        return None
    apps = list_repository_applications(repo.id)
    if job.branch is not None:
        apps = [a for a in apps if a.branch == job.branch]
    source = open_source(repo)
    resolve = _resolver_for(job, source)
    if job.origin is SyncOrigin.REPOSITORY_POLLING:
        # Edge-triggered: a poll that finds nothing new leaves everything (errors included) as is.
        up_to_date, resolve = _nothing_new(apps, resolve)
        if up_to_date:
            record_finished(job.job_id, ok=True, error=None, result={"skipped": "no new commit"})
            return None
    report = sync_applications(
        repo,
        apps,
        resolve,
        job.origin,
        source=source,
        trigger_id=job.job_id,
        actor=job.actor,
    )
    record_finished(
        job.job_id,
        ok=report.status is RepositorySyncStatus.SUCCESS,
        error=report.error,
        result=report.summary(),
    )
    return report
