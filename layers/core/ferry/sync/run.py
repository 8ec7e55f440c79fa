"""Repository sync (layer 1): the one path every trigger funnels into.

A sync job runs as one execution of the repository-sync state machine
(functions/statemachines/sync.asl.json), in three tasks:

1. `plan_sync` — resolves each branch's commit once (never once per application), records a
   failed event on each application of a branch that cannot be resolved, marks the repository
   `syncing`, and splits the applications to sync into batches. A poll that finds nothing new
   ends here, touching nothing.
2. `sync_batch` — for each application of one batch (a Map runs the batches in parallel, with a
   bound), lists its bundle (its directory: ferry/sync/bundle.py) at exactly the resolved commit
   and hands a deploy to every application whose bundle changed (or whose last deploy did not
   succeed). The batch reads its rows in one call and makes its status writes together; the
   write that starts a deploy also does what the deploy's MarkInProgress (and, for a free slot,
   AcquireDeploySlot) would do again, so the deploy execution starts at its agent.
3. `end_sync` — the repository ends `success` or `failed` (the last error wins), and so does the
   job; a Catch on every state comes here with the error, so no sync stays `syncing`.

Repository `success` means "dispatched", not "deployed": deploys finish in their own executions.
`run_sync_job` runs the same three tasks in order in-process (tests use it).
"""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

from aws_lambda_powertools import Logger
from pydantic import BaseModel, Field

from ferry.deploy.notify import notify_targets
from ferry.deploy.progress import inline_request, marked, running_event
from ferry.deploy.slot import slot_lease
from ferry.deploy.start import deploy_input_for, deploy_request_id, start_deploy_execution
from ferry.deploy.status import StatusWrite, update_application_status, update_applications_status
from ferry.domain.bundle import (
    BundleEntry,
    BundleError,
    BundleFile,
    TreeEntry,
    changed_paths,
    compose_path_in,
    describe_changes,
    pack,
    unpack,
)
from ferry.domain.bundle import blob_id as content_id
from ferry.domain.messages import DeployInput, SyncJob
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
from ferry.domain.outcomes import cause_message
from ferry.errors import Conflict, FerryError, GitError, NotFound, TransientError
from ferry.git.source import GitSource, decode_text
from ferry.settings import get_settings
from ferry.store.agents import get_agent
from ferry.store.applications import (
    LoadedApplication,
    free_deploy_slot,
    get_application,
    list_repository_applications,
    load_applications,
)
from ferry.store.batch_reads import read_batch
from ferry.store.bundles import StoredBundle, archive_of, bundle_of, drop_bundle, keep_bundle
from ferry.store.events import add_event
from ferry.store.jobs import record_finished, record_running
from ferry.store.repositories import get_repository
from ferry.sync.bundle import ListedBundle, limits, list_bundle, read_bundle
from ferry.sync.resolvers import Resolver, open_repository
from ferry.sync.status import update_repository_status

logger = Logger(child=True)

# A plan names the agents of its applications for each batch to read with its rows, up to this
# many (the batch read has room for 100 keys: its rows, the repository and these).
AGENTS_READ_WITH_A_BATCH = 25


class AppSyncResult(StrEnum):
    DEPLOYING = "deploying"
    NO_CHANGE = "no_change"
    UP_TO_DATE = "up_to_date"  # polling found the commit already recorded: nothing done
    IGNORED = "ignored"  # an older named commit, a push while pinned, an application being removed
    FAILED = "failed"


class SyncReport(BaseModel):
    """What one repository sync (or one batch of it) did, per application."""

    repository_id: str
    status: RepositorySyncStatus = RepositorySyncStatus.SYNCING
    error: str | None = None
    commits: dict[str, str] = Field(default_factory=dict)  # branch → resolved SHA
    applications: dict[str, AppSyncResult] = Field(default_factory=dict)
    deploy_requests: dict[str, str] = Field(default_factory=dict)  # application → request id

    def summary(self) -> dict[str, object]:
        """A JSON-ready account of the sync (kept on the job, returned by idempotent replays)."""
        return {
            "repository_status": self.status.value,
            "error": self.error,
            "commits": self.commits,
            "applications": {k: v.value for k, v in self.applications.items()},
            "deploy_requests": self.deploy_requests,
        }


class ResolvedCommit(BaseModel):
    sha: str
    message: str = ""


class SyncPlan(BaseModel):
    """What `plan_sync` hands the batches: each branch's commit (and, for a named commit, each
    branch's head), the branches that failed to resolve, and the applications to sync."""

    repository_id: str
    skip: str | None = None  # why the sync ends at the plan
    commits: dict[str, ResolvedCommit] = Field(default_factory=dict)
    heads: dict[str, str] = Field(default_factory=dict)
    errors: dict[str, str] = Field(default_factory=dict)  # branch → why it did not resolve
    failed: list[str] = Field(default_factory=list)  # applications of those branches
    batches: list[list[str]] = Field(default_factory=list)  # application ids
    # The agents of the applications to sync, read by each batch with its rows (empty past
    # AGENTS_READ_WITH_A_BATCH: then a batch reads the agents it meets as it needs them).
    agent_ids: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class SyncContext:
    """What every application of one sync shares: its trigger, the sync job (its id names the
    deploy requests), who asked, and — for a named commit — each branch's head, resolved from
    the repository (a named commit must be the head or descend from what an application runs).
    """

    trigger: Trigger
    job_id: str
    actor: str | None = None
    head: Resolver | None = None
    # Agents' queue URLs, read once per sync (or batch) instead of once per application; the
    # batch's threads share them, so the first to need an agent reads it and the others wait.
    queue_urls: dict[str, str] = field(default_factory=dict)
    _queue_urls_lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    def agent_queue_url(self, agent_id: str) -> str:
        """The agent's queue URL (NotFound for an agent that is gone)."""
        with self._queue_urls_lock:
            if agent_id not in self.queue_urls:
                self.queue_urls[agent_id] = get_agent(agent_id).queue_url
            return self.queue_urls[agent_id]


def _event(
    application: Application, sync: SyncContext, status: EventStatus, **details: str | None
) -> ApplicationEvent:
    return ApplicationEvent(
        application_id=application.id,
        type=EventType.COMMIT_SYNC,
        trigger=sync.trigger,
        status=status,
        actor=sync.actor,
        finished_at=utcnow(),
        **details,
    )


def _record(
    application: Application, sync: SyncContext, status: EventStatus, **details: str | None
) -> None:
    add_event(_event(application, sync, status, **details))


def _notify_sync_failure(application: Application, reason: str) -> None:
    if application.notification_ids:
        notify_targets(
            application.notification_ids,
            f"Ferry: {application.name} could not be synced",
            f"Syncing {application.name} ({application.path} on {application.branch}): {reason}",
        )


def _why_not_deployed(
    application: Application, commit: CommitInfo, sync: SyncContext, source: GitSource
) -> str | None:
    """Why this commit must not be deployed to this application (None: go ahead).

    Going back is a rollback's alone: while pinned, nothing but the pinned commit deploys, and a
    named commit deploys only when it is its branch's head or descends from what runs.
    """
    if application.removal_request_id is not None:
        return "the application is being removed"
    pinned = application.pinned_commit
    if pinned is not None:
        if commit.sha == pinned:
            return None
        return (
            f"pinned at {pinned[:12]} by a rollback: {commit.sha[:12]} recorded, not deployed "
            "(unpin to follow the branch)"
        )
    running = application.commit
    if sync.head is None or running is None or commit.sha == running:
        return None
    if sync.head(application.branch).sha == commit.sha:
        return None
    if source.contains(commit.sha, running):
        return None
    return f"{commit.sha[:12]} is older than the deployed commit {running[:12]}"


def _unchanged(application: Application, bundle_digest: str) -> bool:
    # An unchanged bundle needs no deploy, unless the last deploy did not succeed (then a push is
    # how a user recovers a failed application), none ever ran, or one is in flight (it deploys
    # an older commit: the newer request supersedes it, so the host ends at this one).
    return (
        bundle_digest == application.bundle_digest
        and application.sync_status is ApplicationSyncStatus.SYNCED
    )


def _already_deploying(application: Application, commit: CommitInfo, bundle_digest: str) -> bool:
    return (
        application.sync_status is ApplicationSyncStatus.SYNCING
        and application.target_commit == commit.sha
        and application.bundle_digest == bundle_digest
    )


def _record_duplicate(
    application: Application,
    current: Application,
    sync: SyncContext,
    commit: str,
    request_id: str,
    report: SyncReport,
) -> None:
    """A duplicate trigger (a redelivery, the same commit named twice) never deploys the same
    (application, commit) a second time: `current` (the row as last read) already deploys or
    runs it. A job run again (its own request is current) records nothing the second time."""
    if current.current_request_id != request_id:
        state = (
            "being deployed" if current.sync_status is ApplicationSyncStatus.SYNCING else "deployed"
        )
        message = f"{commit[:12]} is already {state}"
        _record(application, sync, EventStatus.NO_CHANGE, commit=commit, message=message)
    report.applications[application.id] = AppSyncResult.NO_CHANGE


def _known_files(previous: StoredBundle | None) -> dict[str, bytes]:
    """The stored bundle's files by blob id: a changed bundle reads only its new files."""
    if previous is None:
        return {}
    try:
        files = unpack(archive_of(previous), max_files=len(previous.files), max_bytes=previous.size)
    except (BundleError, NotFound, TransientError) as exc:
        logger.warning(
            "stored bundle not reused",
            extra={"application_id": previous.application_id, "reason": str(exc)},
        )
        return {}
    return {content_id(file.data): file.data for file in files}


def _deployed_message(
    application: Application, listed: ListedBundle, previous: StoredBundle | None, sha: str
) -> str:
    """What a deploy ships, for the history: the names of the files that changed (never what
    is in them)."""
    if previous is None:
        files = "file" if len(listed.entries) == 1 else "files"
        return f"{application.path}: bundle of {len(listed.entries)} {files} at {sha[:12]}"
    names = changed_paths(previous.files, listed.entries)
    if not names:
        return f"{application.path} redeployed at {sha[:12]}"
    shown = [f"{listed.root}/{name}" if listed.root else name for name in names]
    return f"{describe_changes(shown)} at {sha[:12]}"


def _compose_text(files: list[BundleFile], listed: ListedBundle, application: Application) -> str:
    inside = compose_path_in(application.path, listed.root)
    data = next(file.data for file in files if file.path == inside)
    return decode_text(data, application.path)


@dataclass
class _Pending:
    """An application's status write a sync batch makes together with the others', and what
    follows it: a `no_change` record, or (with `deploy`) the start of its deploy."""

    write: StatusWrite
    commit: str
    deploy: _Deploy | None = None


@dataclass
class _Deploy:
    deploy_input: DeployInput
    bundle: StoredBundle  # the new bundle, as recorded by the write
    previous: StoredBundle | None
    new_in_bucket: bool
    slot_taken: bool = False  # the status write took the deploy slot for this request


def _sync_application(
    found: LoadedApplication,
    commit: CommitInfo,
    sync: SyncContext,
    source: GitSource,
    report: SyncReport,
) -> _Pending | None:
    """Decide what this commit means for the application; a status write comes back (pending)
    for the batch to make with the others', anything else is recorded here."""
    application = found.application
    if sync.trigger is Trigger.POLLING and application.commit == commit.sha:
        report.applications[application.id] = AppSyncResult.UP_TO_DATE
        return None
    refusal = _why_not_deployed(application, commit, sync, source)
    if refusal is not None:
        _record(application, sync, EventStatus.IGNORED, commit=commit.sha, message=refusal)
        report.applications[application.id] = AppSyncResult.IGNORED
        return None
    bounds = limits()
    listed = list_bundle(source, commit.sha, application, bounds)

    request_id = deploy_request_id(application.id, commit.sha, sync.job_id)
    if _already_deploying(application, commit, listed.digest):
        _record_duplicate(application, application, sync, commit.sha, request_id, report)
        return None
    if _unchanged(application, listed.digest):
        # The host already runs this very bundle: the commit is recorded as what it runs.
        changes: dict[str, Any] = {
            "commit": commit.sha,
            "commit_message": commit.message,
            "target_commit": commit.sha,
            "target_commit_message": commit.message,
            "last_sync_error": None,
        }
        message = f"{application.path} and its directory unchanged at {commit.sha[:12]}"
        event = _event(application, sync, EventStatus.NO_CHANGE, commit=commit.sha, message=message)
        return _Pending(StatusWrite(application, found.events_seq, changes, [event]), commit.sha)

    deploy_input = deploy_input_for(
        application.model_copy(
            update={"target_commit": commit.sha, "target_commit_message": commit.message}
        ),
        request_id,
        sync.trigger,
        actor=sync.actor,
        agent_queue_url=sync.agent_queue_url(application.agent_id),
    )
    previous = bundle_of(found.row)
    files = read_bundle(source, commit.sha, listed, bounds, _known_files(previous))
    compose_file = _compose_text(files, listed, application)
    recorded_files = [
        BundleEntry(path=e.path, mode=e.mode, blob=e.blob, size=len(f.data))
        for e, f in zip(listed.entries, files, strict=True)
    ]
    archive = pack(files)
    bundle = keep_bundle(application.id, listed.digest, listed.root, recorded_files, archive)
    changed = compose_file != application.compose_file
    # One write starts the deploy: what it deploys, and `syncing` (the host does not run it
    # yet: `commit` changes only when the deploy's result says it does). It also does what the
    # deploy's MarkInProgress would do again (its history's running entry), so the deploy
    # starts at its slot.
    changes = {
        "compose_file": compose_file,
        "previous_compose_file": (
            application.compose_file if changed else application.previous_compose_file
        ),
        **bundle,
        "target_commit": commit.sha,
        "target_commit_message": commit.message,
        "current_request_id": request_id,
        "current_trigger": sync.trigger,
        "sync_status": ApplicationSyncStatus.SYNCING,
        "last_sync_error": None,
    }
    message = _deployed_message(application, listed, previous, commit.sha)
    events = [
        _event(
            application,
            sync,
            EventStatus.SUCCEEDED,
            commit=commit.sha,
            request_id=request_id,
            message=message,
        ),
        running_event(deploy_input),
    ]
    kept = StoredBundle(
        application_id=application.id,
        digest=listed.digest,
        root=listed.root,
        files=recorded_files,
        archive=archive if bundle["bundle_archive"] is not None else None,
    )
    write = StatusWrite(
        application,
        found.events_seq,
        changes,
        events,
        unless_removing=True,
        still_wanted=lambda current: (
            not (
                _already_deploying(current, commit, listed.digest)
                or _unchanged(current, listed.digest)
            )
        ),
    )
    now = utcnow()
    if free_deploy_slot(found.row, now):
        # Nobody holds the slot: the write takes it for this request (only while it is still
        # as read), so the deploy goes straight to its agent.
        write.claims = {
            "deploy_slot": request_id,
            "deploy_slot_until": now + slot_lease(deploy_input.timeout_seconds),
        }
        write.expected = {"deploy_slot": found.row.deploy_slot}
    return _Pending(
        write,
        commit.sha,
        _Deploy(deploy_input, kept, previous, new_in_bucket=bundle["bundle_archive"] is None),
    )


def _write_pending(
    pending: list[tuple[LoadedApplication, _Pending]], sync: SyncContext, report: SyncReport
) -> list[tuple[Application, _Deploy]]:
    """Make the batch's status writes together; returns the deploys to start."""
    results = update_applications_status([p.write for _found, p in pending])
    starts: list[tuple[Application, _Deploy]] = []
    for (found, item), result in zip(pending, results, strict=True):
        application = found.application
        if result.unwanted is not None and item.deploy is not None:
            # Another sync started (or finished) this very deploy since the batch read the row.
            request_id = item.deploy.deploy_input.request_id
            _record_duplicate(application, result.unwanted, sync, item.commit, request_id, report)
        elif result.application is not None:
            if item.deploy is None:
                report.applications[application.id] = AppSyncResult.NO_CHANGE
            else:
                item.deploy.slot_taken = result.claimed and bool(item.write.claims)
                starts.append((result.application, item.deploy))
        elif item.deploy is not None and isinstance(result.error, Conflict):
            deploy = item.deploy
            if deploy.new_in_bucket and (
                deploy.previous is None or deploy.previous.digest != deploy.bundle.digest
            ):
                _drop_quietly(application.id, deploy.bundle.digest)
            reason = "the application is being removed"
            _record(application, sync, EventStatus.IGNORED, commit=item.commit, message=reason)
            report.applications[application.id] = AppSyncResult.IGNORED
        else:
            _fail_application(application, sync, report, item.commit, str(result.error))
    return starts


def _start(recorded: Application, deploy: _Deploy, sync: SyncContext, report: SyncReport) -> None:
    previous = deploy.previous
    if previous is not None and previous.in_bucket and previous.digest != deploy.bundle.digest:
        _drop_quietly(recorded.id, previous.digest)
    request = inline_request(deploy.deploy_input, recorded, deploy.bundle)
    if request is None:
        start_deploy_execution(deploy.deploy_input)  # MarkInProgress puts the bundle in place
    else:
        start_deploy_execution(deploy.deploy_input, marked(request), slot=deploy.slot_taken)
    report.applications[recorded.id] = AppSyncResult.DEPLOYING
    report.deploy_requests[recorded.id] = deploy.deploy_input.request_id


def _drop_quietly(application_id: str, digest: str) -> None:
    """Delete an archive no row records any more; one left behind is deleted with its
    application."""
    try:
        drop_bundle(application_id, digest)
    except FerryError as exc:
        logger.warning(
            "unrecorded bundle left in the bucket",
            extra={"application_id": application_id, "reason": str(exc)},
        )


def _fail_application(
    application: Application, sync: SyncContext, report: SyncReport, commit: str, error: str
) -> None:
    report.error = f"application {application.name}: {error}"
    report.applications[application.id] = AppSyncResult.FAILED
    _record(application, sync, EventStatus.FAILED, commit=commit, error=error)
    try:
        update_application_status(
            application.id,
            {"sync_status": ApplicationSyncStatus.OUT_OF_SYNC, "last_sync_error": error},
        )
    except FerryError:
        logger.exception("failure not recorded", extra={"application_id": application.id})
    _notify_sync_failure(application, error)


def _guarded(
    application: Application, commit: str, sync: SyncContext, report: SyncReport, step: Any
) -> Any:
    """Run one step of an application's sync; a failure ends this application (recorded),
    never the others."""
    try:
        return step()
    except FerryError as exc:
        _fail_application(application, sync, report, commit, str(exc))
    except Exception as exc:  # a bug must end this application, not hang it
        logger.exception("unexpected error", extra={"application_id": application.id})
        _fail_application(application, sync, report, commit, f"unexpected error: {exc!r}")
    return None


def _sync_together(
    loaded: list[tuple[LoadedApplication, CommitInfo]],
    sync: SyncContext,
    source: GitSource,
    report: SyncReport,
) -> None:
    """Sync applications at their commits: each decided on its own (several at once), their
    status writes made together, then their deploys started (several at once)."""

    def prepare(found: LoadedApplication, commit: CommitInfo) -> None:
        application = found.application
        item = _guarded(
            application,
            commit.sha,
            sync,
            report,
            lambda: _sync_application(found, commit, sync, source, report),
        )
        if item is not None:
            with lock:
                pending.append((found, item))

    lock = threading.Lock()
    pending: list[tuple[LoadedApplication, _Pending]] = []
    _side_by_side([lambda f=f, c=c: prepare(f, c) for f, c in loaded])
    # The batch's order, whatever order the threads finished in.
    order = {found.application.id: index for index, (found, _c) in enumerate(loaded)}
    pending.sort(key=lambda p: order[p[0].application.id])
    starts = _guarded_writes(pending, sync, report)
    _side_by_side(
        [
            lambda r=r, d=d: _guarded(
                r, d.deploy_input.commit, sync, report, lambda: _start(r, d, sync, report)
            )
            for r, d in starts
        ]
    )


def _guarded_writes(
    pending: list[tuple[LoadedApplication, _Pending]], sync: SyncContext, report: SyncReport
) -> list[tuple[Application, _Deploy]]:
    if not pending:
        return []
    try:
        return _write_pending(pending, sync, report)
    except Exception as exc:  # the writes failed as a whole: each application ends failed
        logger.exception("status writes failed", extra={"applications": len(pending)})
        error = describe_error(exc)
        for found, item in pending:
            _fail_application(found.application, sync, report, item.commit, error)
        return []


def _side_by_side(steps: list[Any]) -> None:
    """Run independent steps at once (FERRY_SYNC_BATCH_WORKERS), each in a copy of this
    context: in the embedded cloud that is who signs the calls (the function's role)."""
    workers = min(get_settings().sync_batch_workers, len(steps))
    if workers <= 1:
        for step in steps:
            step()
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sync-batch") as pool:
        running = [pool.submit(contextvars.copy_context().run, step) for step in steps]
        for done in running:
            done.result()  # every step records its own failures; anything else is a bug: raise


def _fail_branch(
    branch_apps: list[Application], sync: SyncContext, report: SyncReport, error: str
) -> None:
    report.error = error
    for application in branch_apps:
        _record(application, sync, EventStatus.FAILED, error=error)
        report.applications[application.id] = AppSyncResult.FAILED
        _notify_sync_failure(application, error)


def sync_applications(
    repo: Repository,
    apps: list[Application],
    resolve: Resolver,
    trigger: Trigger,
    *,
    source: GitSource,
    job_id: str,
    actor: str | None = None,
    head: Resolver | None = None,
) -> SyncReport:
    """Sync `apps` of `repo` in one go: resolve once per branch, deploy what changed, record the
    outcome (what the state machine's three tasks do, for callers holding their own resolver).
    """
    sync = SyncContext(trigger=trigger, job_id=job_id, actor=actor, head=head)
    report = SyncReport(repository_id=repo.id)
    update_repository_status(repo.id, RepositorySyncStatus.SYNCING, job_id=job_id)
    for branch, branch_apps in _by_branch(apps).items():
        try:
            commit = resolve(branch)
        except GitError as exc:
            _fail_branch(branch_apps, sync, report, f"branch {branch}: {exc}")
            continue
        report.commits[branch] = commit.sha
        loaded = load_applications([a.id for a in branch_apps])
        found = [(loaded[a.id], commit) for a in branch_apps if a.id in loaded]
        _sync_together(found, sync, _shared_reads(source), report)
    return _finish(repo.id, report)


def _finish(repository_id: str, report: SyncReport) -> SyncReport:
    if report.error is None:
        report.status = RepositorySyncStatus.SUCCESS
        update_repository_status(repository_id, report.status, synced_at=utcnow())
    else:
        report.status = RepositorySyncStatus.FAILED
        update_repository_status(repository_id, report.status, error=report.error)
    logger.info(
        "repository synced",
        extra={
            "repository_id": repository_id,
            "status": report.status,
            "error": report.error,
            "commits": report.commits,
        },
    )
    return report


def _by_branch(apps: list[Application]) -> dict[str, list[Application]]:
    grouped: dict[str, list[Application]] = {}
    for application in apps:
        if application.branch.strip():
            grouped.setdefault(application.branch, []).append(application)
    return grouped


def _nothing_new(apps: list[Application], commits: dict[str, ResolvedCommit]) -> bool:
    """For polling: True when every application is already at its branch's commit (a pinned
    application stays where its rollback put it: a poll neither deploys nor records for it)."""
    return all(
        a.pinned_commit is not None or (a.branch in commits and a.commit == commits[a.branch].sha)
        for a in apps
        if a.branch.strip()
    )


def _applications_of(job: SyncJob, repo: Repository) -> list[Application]:
    if job.application_id is None:
        apps = list_repository_applications(repo.id)
    else:
        # One application's sync (its registration) reads only it, however many share the
        # repository: registering N applications stays linear.
        try:
            apps = [get_application(job.application_id)]
        except NotFound:
            apps = []
        apps = [a for a in apps if a.repository_id == repo.id]
    if job.branch is not None:
        apps = [a for a in apps if a.branch == job.branch]
    if job.trigger is Trigger.POLLING:
        apps = [a for a in apps if a.pinned_commit is None]
    return apps


def _tag_branches(job: SyncJob, source: GitSource) -> set[str] | None:
    """The branches a pushed tag moved (those containing its commit), or None when the source
    cannot tell (then every branch syncs at its head)."""
    if job.tag is None or job.commit is None:
        return None
    finder = getattr(source, "branches_containing", None)
    if finder is None:
        return None
    return set(finder(job.commit))


def plan_sync(job: SyncJob) -> SyncPlan:
    """Task 1: resolve once per branch, mark the repository `syncing`, batch the applications.

    `skip` says why nothing more runs (a poll that found nothing new, a deleted repository, a
    tag on no tracked branch); the job is then finished here and the repository left as it is.
    """
    record_running(job)
    try:
        repo = get_repository(job.repository_id)
    except NotFound:
        logger.warning("sync job for a deleted repository dropped", extra={"job_id": job.job_id})
        return _skipped(job, "repository deleted")
    apps = _applications_of(job, repo)
    source = open_repository(repo)
    tagged = _tag_branches(job, source)
    if tagged is not None:
        apps = [a for a in apps if a.branch in tagged]
        if not apps:
            return _skipped(job, f"tag {job.tag} is on no branch an application tracks")
    plan = SyncPlan(repository_id=repo.id)
    named = job.commit is not None and job.tag is None
    for branch in _by_branch(apps):
        try:
            if named:
                plan.heads[branch] = source.latest_commit(branch).sha
                resolved = source.commit(str(job.commit))
            else:
                resolved = source.latest_commit(branch)
        except GitError as exc:
            plan.errors[branch] = f"branch {branch}: {exc}"
            continue
        plan.commits[branch] = ResolvedCommit(sha=resolved.sha, message=resolved.message)
    if job.trigger is Trigger.POLLING and not plan.errors and _nothing_new(apps, plan.commits):
        # Edge-triggered: a poll that finds nothing new leaves everything (errors included) as is.
        return _skipped(job, "no new commit")

    sync = _context(job, plan)
    report = SyncReport(repository_id=repo.id)
    update_repository_status(repo.id, RepositorySyncStatus.SYNCING, job_id=job.job_id)
    to_sync: list[str] = []
    for branch, branch_apps in _by_branch(apps).items():
        if branch in plan.errors:
            _fail_branch(branch_apps, sync, report, plan.errors[branch])
            plan.failed.extend(a.id for a in branch_apps)
        else:
            to_sync.extend(a.id for a in branch_apps)
    size = get_settings().sync_batch_size
    plan.batches = [to_sync[i : i + size] for i in range(0, len(to_sync), size)]
    syncing = set(to_sync)
    agent_ids = sorted({a.agent_id for a in apps if a.id in syncing})
    if len(agent_ids) <= AGENTS_READ_WITH_A_BATCH:
        plan.agent_ids = agent_ids
    return plan


def _skipped(job: SyncJob, reason: str) -> SyncPlan:
    record_finished(job, ok=True, error=None, result={"skipped": reason})
    return SyncPlan(repository_id=job.repository_id, skip=reason)


def _context(job: SyncJob, plan: SyncPlan) -> SyncContext:
    head: Resolver | None = None
    if plan.heads:
        heads = plan.heads

        def head(branch: str) -> CommitInfo:
            return CommitInfo(sha=heads[branch])

    return SyncContext(trigger=job.trigger, job_id=job.job_id, actor=job.actor, head=head)


def sync_batch(job: SyncJob, plan: SyncPlan, application_ids: list[str]) -> SyncReport:
    """Task 2 (one Map iteration): sync each application of the batch at its branch's commit.

    The batch's applications are read again in one go (their status may have moved since the
    plan was made); one that is gone meanwhile is left out. Their status writes are made
    together (a few round trips a batch, not three an application). Failures are per
    application: recorded, never raised.
    """
    report = SyncReport(repository_id=plan.repository_id)
    sync = _context(job, plan)
    reads = read_batch(plan.repository_id, application_ids, plan.agent_ids)
    sync.queue_urls.update(reads.queue_urls)
    source = _shared_reads(open_repository(reads.repository))
    loaded = reads.applications
    batch: list[tuple[LoadedApplication, CommitInfo]] = []
    for application_id in application_ids:
        found = loaded.get(application_id)
        if found is None:
            continue
        resolved = plan.commits.get(found.application.branch)
        if resolved is None:
            continue  # its branch changed since the plan: the sync that change queued handles it
        report.commits[found.application.branch] = resolved.sha
        batch.append((found, CommitInfo(sha=resolved.sha, message=resolved.message)))
    _sync_together(batch, sync, source, report)
    return report


class _SharedReads:
    """A repository source shared by a batch's threads: calls take turns (a cached clone or an
    HTTP session is not promised to be thread-safe), and a directory's listing or a file's
    content is read once for the batch (applications sharing a directory, or files, at the
    same commit read them once)."""

    def __init__(self, source: GitSource) -> None:
        self._source = source
        self._lock = threading.Lock()
        self._trees: dict[tuple[str, str], list[TreeEntry]] = {}
        self._blobs: dict[tuple[str, int], bytes] = {}

    def read_tree(self, sha: str, path: str = "") -> list[TreeEntry]:
        with self._lock:
            key = (sha, path)
            if key not in self._trees:
                self._trees[key] = self._source.read_tree(sha, path)
            return list(self._trees[key])

    def read_blob(self, sha: str, entry: TreeEntry) -> bytes:
        with self._lock:
            key = (entry.blob, entry.mode)  # a blob id names its content, whatever the commit
            if key not in self._blobs:
                self._blobs[key] = self._source.read_blob(sha, entry)
            return self._blobs[key]

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._source, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


def _shared_reads(source: GitSource) -> GitSource:
    return cast(GitSource, _SharedReads(source))


def end_sync(
    job: SyncJob,
    plan: SyncPlan | None,
    batches: list[SyncReport],
    error: str | None = None,
) -> SyncReport:
    """Task 3: the repository and the job end `success` or `failed` (the last error wins).

    `error` is what a Catch caught (the sync could not finish its plan): the sync ends `failed`
    with it, whatever the batches did.
    """
    report = SyncReport(repository_id=job.repository_id)
    if plan is not None:
        report.commits.update({branch: c.sha for branch, c in plan.commits.items()})
        report.applications.update(dict.fromkeys(plan.failed, AppSyncResult.FAILED))
        if plan.errors:
            report.error = list(plan.errors.values())[-1]
    for batch in batches:
        report.applications.update(batch.applications)
        report.deploy_requests.update(batch.deploy_requests)
        report.error = batch.error or report.error
    if error is not None:
        report.error = error
    try:
        _finish(job.repository_id, report)
    finally:
        record_finished(
            job,
            ok=report.status is RepositorySyncStatus.SUCCESS,
            error=report.error,
            result=report.summary(),
        )
    return report


def run_sync_job(job: SyncJob) -> SyncReport | None:
    """Run one sync job's three tasks in order, in this process. None when there was nothing to
    do (its repository is gone, or a poll found every application at its branch's commit).

    Every failure ends the sync: an unexpected error marks the repository and the job `failed`
    with the error (a transient one is raised again afterwards, so a retry can run it again).
    """
    plan: SyncPlan | None = None
    try:
        plan = plan_sync(job)
        if plan.skip is not None:
            return None
        batches = [sync_batch(job, plan, batch) for batch in plan.batches]
    except Exception as exc:
        report = end_sync(job, plan, [], error=describe_error(exc))
        logger.exception("sync failed", extra={"job_id": job.job_id})
        if isinstance(exc, TransientError):
            raise
        return report
    return end_sync(job, plan, batches)


def describe_caught(error: dict[str, Any]) -> str:
    """What a state machine's Catch caught (`{"Error", "Cause"}`), as the sync's error."""
    name = str(error.get("Error") or "unknown error")
    detail = cause_message(str(error.get("Cause") or ""))
    return f"the sync failed: {name}" + (f": {detail}" if detail else "")


def describe_error(exc: BaseException) -> str:
    """How a failure that ended a sync reads in its status and its job."""
    if isinstance(exc, FerryError):
        return str(exc)
    return f"unexpected error: {exc!r}"
