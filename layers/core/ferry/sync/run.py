"""Repository sync (layer 1): the one path every trigger funnels into.

`sync_applications` marks the repository syncing, resolves each branch's commit once, reads each
application's compose file at that exact commit and hands a deploy to every application whose file
changed (or whose last deploy did not succeed), then marks the repository success or failed.
Repository `success` means "dispatched", not "deployed": deploys finish in their own executions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from aws_lambda_powertools import Logger

from ferry.deploy.notify import notify_targets
from ferry.deploy.start import deploy_request_id, start_deploy
from ferry.deploy.status import update_application_status
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
    Trigger,
    utcnow,
)
from ferry.errors import FerryError, GitError, NotFound
from ferry.git.source import GitSource
from ferry.store.applications import list_repository_applications
from ferry.store.events import add_event
from ferry.store.jobs import record_finished, record_running
from ferry.store.repositories import get_repository
from ferry.sync.resolvers import (
    Resolver,
    latest_commit,
    open_repository,
    resolve_once,
    static_commit,
)
from ferry.sync.status import update_repository_status

logger = Logger(child=True)


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
class SyncContext:
    """What every application of one sync shares: its trigger, the sync job (its id names the
    deploy requests) and who asked."""

    trigger: Trigger
    job_id: str
    actor: str | None = None


def _record(
    application: Application, sync: SyncContext, status: EventStatus, **details: str | None
) -> None:
    add_event(
        ApplicationEvent(
            application_id=application.id,
            type=EventType.COMMIT_SYNC,
            trigger=sync.trigger,
            status=status,
            actor=sync.actor,
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
    sync: SyncContext,
    source: GitSource,
    report: SyncReport,
) -> None:
    if sync.trigger is Trigger.POLLING and application.commit == commit.sha:
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
            sync,
            EventStatus.NO_CHANGE,
            commit=commit.sha,
            message=f"{application.path} unchanged at {commit.sha[:12]}",
        )
        report.applications[application.id] = AppSyncResult.NO_CHANGE
        return

    request_id = deploy_request_id(application.id, commit.sha, sync.job_id)
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
        sync,
        EventStatus.SUCCEEDED,
        commit=commit.sha,
        request_id=request_id,
        message=f"{application.path} {'changed' if changed else 'redeployed'} at {commit.sha[:12]}",
    )
    start_deploy(recorded, request_id, sync.trigger, actor=sync.actor)
    report.applications[application.id] = AppSyncResult.DEPLOYING
    report.deploy_requests[application.id] = request_id


def sync_applications(
    repo: Repository,
    apps: list[Application],
    resolve: Resolver,
    trigger: Trigger,
    *,
    source: GitSource,
    job_id: str,
    actor: str | None = None,
) -> SyncReport:
    """Sync `apps` of `repo`: resolve once per branch, deploy what changed, record the outcome.

    A branch whose commit cannot be resolved records a failed event on each of its applications;
    the other branches still proceed. The repository ends `success` or `failed` (the last error
    wins). Applications with an empty branch are skipped.
    """
    sync = SyncContext(trigger=trigger, job_id=job_id, actor=actor)
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
                _record(application, sync, EventStatus.FAILED, error=report.error)
                report.applications[application.id] = AppSyncResult.FAILED
                _notify_sync_failure(application, report.error)
            continue
        report.commits[branch] = commit.sha
        for application in branch_apps:
            try:
                _sync_application(application, commit, sync, source, report)
            except FerryError as exc:
                report.error = f"application {application.name}: {exc}"
                report.applications[application.id] = AppSyncResult.FAILED
                _record(application, sync, EventStatus.FAILED, commit=commit.sha, error=str(exc))
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


def _nothing_new(apps: list[Application], resolve: Resolver) -> bool:
    """For polling: True when every application is already at its branch's commit."""
    for application in apps:
        if not application.branch.strip():
            continue
        try:
            if application.commit != resolve(application.branch).sha:
                return False
        except GitError:
            return False
    return True


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
    source = open_repository(repo)
    resolve = latest_commit(source) if job.commit is None else static_commit(source, job.commit)
    if job.trigger is Trigger.POLLING:
        # Edge-triggered: a poll that finds nothing new leaves everything (errors included) as is.
        resolve = resolve_once({a.branch for a in apps if a.branch.strip()}, resolve)
        if _nothing_new(apps, resolve):
            record_finished(job.job_id, ok=True, error=None, result={"skipped": "no new commit"})
            return None
    report = sync_applications(
        repo,
        apps,
        resolve,
        job.trigger,
        source=source,
        job_id=job.job_id,
        actor=job.actor,
    )
    record_finished(
        job.job_id,
        ok=report.status is RepositorySyncStatus.SUCCESS,
        error=report.error,
        result=report.summary(),
    )
    return report
