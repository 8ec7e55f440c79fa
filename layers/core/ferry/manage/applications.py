"""Applications as the API offers them: create (and deploy at once), change, redeploy, remove."""

from __future__ import annotations

from typing import Any

from ferry.deploy.start import deploy_input_for, deploy_request_id, start_deploy_execution
from ferry.deploy.status import update_application_status
from ferry.domain.messages import SyncJob
from ferry.domain.models import (
    Application,
    ApplicationEvent,
    ApplicationSyncStatus,
    EventStatus,
    EventType,
    ImageUpdates,
    Trigger,
    new_id,
    utcnow,
)
from ferry.domain.naming import compose_project_name
from ferry.domain.validation import (
    MAX_PATH_LENGTH,
    check_branch,
    check_id,
    check_text,
    clean_name,
)
from ferry.errors import (
    Conflict,
    GitError,
    InvalidInput,
    NotFound,
    TransientError,
    Unprocessable,
)
from ferry.git.source import is_full_sha, normalize_repo_path
from ferry.store.agents import get_agent
from ferry.store.applications import (
    create_application,
    get_application,
    redefine_application,
    swap_application_field,
)
from ferry.store.events import add_event, list_events
from ferry.store.feed import announce, application_path
from ferry.store.notifications import get_target
from ferry.store.repositories import get_repository
from ferry.sync.queue import enqueue_sync_job
from ferry.sync.resolvers import open_repository

# Creating an application reads its compose file once; an API request must answer well within
# API Gateway's 29 s, so each network step of that read gets this long.
COMPOSE_CHECK_TIMEOUT_SECONDS = 8.0


def _must_exist(kind: str, lookup: Any, identifier: str) -> None:
    check_id(identifier, f"{kind} id")
    try:
        lookup(identifier)
    except NotFound as exc:
        raise InvalidInput(f"{kind} {identifier} does not exist") from exc


def _clean_name(name: str) -> str:
    name = clean_name(name, "application name")
    compose_project_name(name)  # InvalidInput when it cannot name a compose project
    return name


def _clean_path(path: str) -> str:
    return normalize_repo_path(check_text(path, "path", max_length=MAX_PATH_LENGTH))


def _clean_root(root: str | None, path: str) -> str | None:
    """The bundle's directory as stored: None for the compose file's own (an empty value),
    "." for the repository root, else a repository path that holds the compose file."""
    if root is None or not root.strip():
        return None
    cleaned = check_text(root, "root", max_length=MAX_PATH_LENGTH).strip().replace("\\", "/")
    if cleaned.strip("/") in ("", "."):
        return "."
    try:
        directory = normalize_repo_path(cleaned)
    except InvalidInput:
        raise InvalidInput("root must be a relative directory inside the repository") from None
    if not path.startswith(f"{directory}/"):
        raise InvalidInput(
            f"root {directory} must be a directory that holds the compose file {path}"
        )
    return directory


def _check_compose_file(repository_id: str, branch: str, path: str) -> None:
    """Unprocessable unless `path` exists on the head of `branch`: one read of the repository,
    bounded by COMPOSE_CHECK_TIMEOUT_SECONDS per network step, so a typo or an unreachable
    repository is answered at once instead of surfacing later in a failed sync."""
    source = open_repository(get_repository(repository_id), timeout=COMPOSE_CHECK_TIMEOUT_SECONDS)
    try:
        source.read_file(source.latest_commit(branch).sha, path)
    except (GitError, TransientError) as exc:
        raise Unprocessable(f"cannot read {path} on branch {branch!r}: {exc}") from exc
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


def _check_notifications(notification_ids: list[str]) -> list[str]:
    for target_id in notification_ids:
        _must_exist("notification target", get_target, target_id)
    return list(dict.fromkeys(notification_ids))


def register_application(
    *,
    name: str,
    repository_id: str,
    agent_id: str,
    branch: str,
    path: str,
    root: str | None = None,
    notification_ids: list[str] | None = None,
    image_updates: ImageUpdates = ImageUpdates.OFF,
    self_heal: bool = False,
    actor: str | None = None,
) -> tuple[Application, str]:
    """Create an application and queue its first sync; returns it and that sync's job id.

    Conflict when the name, or the compose project it normalizes to, is taken on the agent.
    `root` names the directory that ships with the compose file when it is not the file's own.
    """
    name = _clean_name(name)
    path = _clean_path(path)
    root = _clean_root(root, path)
    branch = check_branch(branch)
    _must_exist("repository", get_repository, repository_id)
    _must_exist("agent", get_agent, agent_id)
    notification_ids = _check_notifications(notification_ids or [])
    _check_compose_file(repository_id, branch, path)
    application = create_application(
        name=name,
        repository_id=repository_id,
        agent_id=agent_id,
        branch=branch,
        path=path,
        root=root,
        notification_ids=notification_ids,
        image_updates=ImageUpdates(image_updates).value,
        self_heal=self_heal,
    )
    announce(application_path(application.id), "application.created")
    job_id = enqueue_sync_job(
        SyncJob(
            repository_id=repository_id,
            trigger=Trigger.APPLICATION_CREATED,
            branch=application.branch,
            # Only the new application: the others of its branch are where their syncs put them.
            application_id=application.id,
            actor=actor,
        )
    )
    return application, job_id


def change_application(
    application_id: str, changes: dict[str, Any], *, actor: str | None = None
) -> tuple[Application, str | None]:
    """Rename it, point it at another branch, file or root, or change its notifications, image
    updates or self-heal.

    A changed branch, path or root is synced at once (returns that job's id). Moving an
    application to another agent is refused: remove it and create it on the other agent. An
    empty root goes back to the compose file's own directory. Turning self-heal on (also when it
    is on) resumes healing that the flap guard stopped.
    """
    current = get_application(application_id)
    if "agent_id" in changes and changes["agent_id"] != current.agent_id:
        raise InvalidInput(
            "an application cannot move between agents: remove it and create it anew"
        )
    cleaned: dict[str, Any] = {}
    if "name" in changes:
        cleaned["name"] = _clean_name(changes["name"])
    if "branch" in changes:
        cleaned["branch"] = check_branch(str(changes["branch"]))
    if "path" in changes:
        cleaned["path"] = _clean_path(changes["path"])
    if "root" in changes or "path" in cleaned:
        cleaned["root"] = _clean_root(
            changes.get("root", current.root), cleaned.get("path", current.path)
        )
    if "notification_ids" in changes:
        cleaned["notification_ids"] = _check_notifications(changes["notification_ids"])
    if "image_updates" in changes:
        cleaned["image_updates"] = ImageUpdates(changes["image_updates"])
    if "self_heal" in changes:
        cleaned["self_heal"] = bool(changes["self_heal"])
    if cleaned.get("self_heal") and current.self_heal_stopped_at is not None:
        swap_application_field(
            application_id, "self_heal_stopped_at", current.self_heal_stopped_at, None,
            self_heal_at=[],
        )  # fmt: skip
    cleaned = {k: v for k, v in cleaned.items() if getattr(current, k) != v}
    if not cleaned:
        return get_application(application_id), None
    if {"branch", "path"} & set(cleaned):
        _check_compose_file(
            current.repository_id,
            cleaned.get("branch", current.branch),
            cleaned.get("path", current.path),
        )
    if "image_updates" in cleaned:
        cleaned["image_updates"] = cleaned["image_updates"].value
    application = redefine_application(application_id, cleaned)
    announce(application_path(application_id), "application.updated")
    job_id = None
    if {"branch", "path", "root"} & set(cleaned):
        job_id = enqueue_sync_job(
            SyncJob(
                repository_id=application.repository_id,
                trigger=Trigger.MANUAL,
                branch=application.branch,
                application_id=application.id,
                actor=actor,
            )
        )
    return application, job_id


def redeploy_application(
    application_id: str,
    *,
    actor: str | None = None,
    trigger: Trigger = Trigger.MANUAL,
    reason: str | None = None,
) -> str:
    """Deploy the application's desired commit again (its target, else what it runs) with the
    stored compose file; returns the deploy request's id.

    Automatic redeploys name their `trigger` (an image update also pulls every image) and their
    `reason` (shown in the history event); a restart of the local stack redeploys with the
    interrupted deploy's own trigger.
    """
    application = get_application(application_id)
    commit = application.desired_commit
    if application.compose_file is None or commit is None:
        raise Conflict("the application has not been synced yet: nothing to redeploy")
    request_id = deploy_request_id(application.id, commit, new_id("redeploy"))
    recorded = update_application_status(
        application.id,
        {
            "target_commit": commit,
            "target_commit_message": (
                application.target_commit_message
                if application.target_commit
                else application.commit_message
            ),
            "current_request_id": request_id,
            "current_trigger": trigger,
            "sync_status": ApplicationSyncStatus.SYNCING,
            "last_sync_error": None,
        },
        unless_removing=True,
    )
    start_deploy_execution(
        deploy_input_for(recorded, request_id, trigger, actor=actor, reason=reason)
    )
    return request_id


def _last_good_commit(application: Application) -> str:
    """The newest commit that deployed successfully before the one the application runs."""
    for event in list_events(application.id, limit=200):
        if (
            event.type is EventType.DEPLOYMENT
            and event.status is EventStatus.SUCCEEDED
            and event.commit
            and event.commit != application.commit
        ):
            return event.commit
    raise Conflict(
        "no earlier successful deploy to go back to: name the commit (rollback with a commit)"
    )


def _pin_event(
    application: Application, actor: str | None, message: str, commit: str | None
) -> None:
    add_event(
        ApplicationEvent(
            application_id=application.id,
            type=EventType.PIN,
            trigger=Trigger.MANUAL,
            status=EventStatus.SUCCEEDED,
            commit=commit,
            message=message,
            actor=actor,
            finished_at=utcnow(),
        )
    )


def rollback_application(
    application_id: str,
    *,
    commit: str | None = None,
    reason: str | None = None,
    actor: str | None = None,
) -> tuple[str, str]:
    """Go back: pin the application at `commit` (default: the last commit that deployed
    successfully before the current one) and queue its deploy. Pushes while pinned are recorded,
    not deployed, until `unpin_application`. Returns (the commit, the sync job's id)."""
    application = get_application(application_id)
    if application.removal_request_id is not None:
        raise Conflict("the application is being removed")
    if commit is not None:
        commit = commit.strip().lower()
        if not is_full_sha(commit):
            raise InvalidInput("commit must be a full commit SHA (40 hexadecimal characters)")
    target = commit or _last_good_commit(application)
    update_application_status(application.id, {"pinned_commit": target}, unless_removing=True)
    why = f": {reason.strip()}" if reason and reason.strip() else ""
    _pin_event(
        application, actor, f"pinned at {target[:12]} by {actor or 'an operator'}{why}", target
    )
    announce(application_path(application.id), "application.updated")
    job_id = enqueue_sync_job(
        SyncJob(
            repository_id=application.repository_id,
            trigger=Trigger.MANUAL,
            branch=application.branch,
            application_id=application.id,
            commit=target,
            actor=actor,
        )
    )
    return target, job_id


def unpin_application(application_id: str, *, actor: str | None = None) -> str | None:
    """Release a rollback's pin and sync the application to its branch's head; returns the sync
    job's id (None when it was not pinned)."""
    application = get_application(application_id)
    if application.pinned_commit is None:
        return None
    update_application_status(application.id, {"pinned_commit": None})
    _pin_event(
        application,
        actor,
        f"unpinned by {actor or 'an operator'}: following {application.branch}",
        None,
    )
    announce(application_path(application.id), "application.updated")
    return enqueue_sync_job(
        SyncJob(
            repository_id=application.repository_id,
            trigger=Trigger.MANUAL,
            branch=application.branch,
            application_id=application.id,
            actor=actor,
        )
    )
