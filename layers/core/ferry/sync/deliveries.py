"""Webhook deliveries from every sender, verified and read into one neutral result.

Pure functions: headers, body and the repository's webhook secret in, a `Push`, `Ping` or
`Ignored` out (or an error). The scheme follows the *sender's* headers, not the provider the
repository was registered with, so a GitLab mirror of a GitHub repository works as one expects:

- Forgejo (`X-Forgejo-Event` or `-Signature`): hex HMAC-SHA256 of the body in
  `X-Forgejo-Signature`; Gitea (`X-Gitea-Event` or `-Signature`) likewise in `X-Gitea-Signature`,
  and Gogs (`X-Gogs-Event` or `-Signature`) in `X-Gogs-Signature`.
- Bitbucket Cloud and Data Center (`X-Event-Key`): `sha256=` + hex HMAC-SHA256 of the body in
  `X-Hub-Signature`; Cloud's `repo:push` and Data Center's `repo:refs_changed` move refs, Data
  Center's `diagnostics:ping` is its "Test connection".
- GitLab (`X-Gitlab-Event` or `-Token`): the Standard Webhooks `webhook-signature` when sent (a
  signing token is configured), else `X-Gitlab-Token` equal to the secret.
- GitHub (`X-GitHub-Event` or `X-Hub-Signature-256`): `sha256=` + hex HMAC-SHA256 of the raw body.
- anything else (Azure DevOps service hooks, generic senders): `Authorization: Bearer <secret>`, or
  Basic auth with the secret as password; an Azure `eventType` payload is read as Azure's.

Forgejo also sends Gitea's and GitHub's headers, and Gitea sends Gogs' and GitHub's, for
compatibility: hence the order. GitHub's legacy SHA-1 `X-Hub-Signature` alone is refused: SHA-256
is always sent beside it.

Standard Webhooks signatures (GitLab's signing token): the HMAC key is the base64-decoded part of
a `whsec_<base64>` secret (the form GitLab requires for signing tokens); any other secret is used
as its UTF-8 bytes. The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the timestamp
must be within `SIGNATURE_TOLERANCE_SECONDS` of now, either way, so a captured delivery cannot be
replayed later; several space-separated `v1,<base64>` signatures may be sent (key rotation) and one
match is enough.

Authentication always comes before the body is read, so an unauthenticated caller learns nothing
about what Ferry would make of a payload. Every comparison of a secret-derived value is
constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs

from ferry.errors import InvalidInput, Unauthorized
from ferry.git.source import is_full_sha

SIGNATURE_TOLERANCE_SECONDS = 5 * 60
MAX_DELIVERY_ID_LENGTH = 256

_ZERO_SHA = re.compile(r"^0+$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_FORM = "application/x-www-form-urlencoded"


class Sender(StrEnum):
    """Who sent a delivery, by the scheme its headers follow."""

    GITHUB = "github"
    GITEA = "gitea"
    FORGEJO = "forgejo"
    GOGS = "gogs"
    BITBUCKET = "bitbucket"
    GITLAB = "gitlab"
    AZURE_DEVOPS = "azure-devops"
    GENERIC = "generic"


@dataclass(frozen=True)
class Push:
    """A branch or tag moved: sync what tracks it.

    Exactly one of `branch` and `tag` is set, except for a generic delivery that names no ref (or
    an Azure DevOps push of several refs at once): then both are None and so is `commit`, meaning
    "sync every branch at its latest commit". For a tag, `commit` is the commit the sender says
    the tag points at (GitHub's `head_commit`, GitLab's `checkout_sha`); senders that state
    nothing better give the ref's new object, which for an annotated tag is the tag object, so the
    resolver peels it. The branches a tag belongs to are resolved later by a provider.
    """

    branch: str | None
    tag: str | None
    commit: str | None
    delivery_id: str | None
    sender: str


@dataclass(frozen=True)
class Ping:
    """A sender checking the hook works (GitHub's `ping`): answer 200, queue nothing."""

    sender: str


@dataclass(frozen=True)
class Ignored:
    """A verified delivery that moves nothing Ferry deploys (an issue, a merge request, a branch
    deletion): answer 2xx so the sender does not retry, queue nothing."""

    reason: str
    sender: str
    delivery_id: str | None


Delivery = Push | Ping | Ignored


def read_delivery(
    headers: Mapping[str, str], body: bytes, secret: str, *, now: float | None = None
) -> Delivery:
    """Verify a webhook delivery against the repository's secret and say what it asks for.

    `headers` are looked up case-insensitively; `body` is the raw request body (signatures are
    over these exact bytes); `now` (Unix seconds, default the clock) judges signature timestamps.
    Raises Unauthorized for a missing or wrong signature or token, InvalidInput for a verified
    delivery that cannot be acted on (malformed JSON, a push without ref or commit, a short SHA).
    """
    if not secret:
        raise Unauthorized("no webhook secret is configured")
    found = _Headers(headers)
    if found.has("x-forgejo-event", "x-forgejo-signature"):
        return _read_gitea_like(found, body, secret, Sender.FORGEJO, "x-forgejo")
    if found.has("x-gitea-event", "x-gitea-signature"):
        return _read_gitea_like(found, body, secret, Sender.GITEA, "x-gitea")
    if found.has("x-gogs-event", "x-gogs-signature"):
        return _read_gitea_like(found, body, secret, Sender.GOGS, "x-gogs")
    if found.has("x-event-key"):
        return _read_bitbucket(found, body, secret)
    if found.has("x-gitlab-event", "x-gitlab-token"):
        return _read_gitlab(found, body, secret, time.time() if now is None else now)
    if found.has("x-github-event", "x-hub-signature-256"):
        return _read_github(found, body, secret)
    return _read_authorized(found, body, secret)


class _Headers:
    """Case-insensitive, blank-is-missing view of the request headers."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._values = {name.lower(): value.strip() for name, value in headers.items()}

    def get(self, name: str) -> str | None:
        return self._values.get(name) or None

    def has(self, *names: str) -> bool:
        return any(self.get(name) is not None for name in names)


def _bytes(text: str) -> bytes:
    # surrogatepass keeps the encoding one-to-one (and never raises) for any header text.
    return text.encode("utf-8", "surrogatepass")


def _same(presented: str, expected: str) -> bool:
    return hmac.compare_digest(_bytes(presented), _bytes(expected))


def _check_hex_hmac(presented: str | None, body: bytes, secret: str, *, prefix: str) -> None:
    if presented is None:
        raise Unauthorized("missing signature")
    expected = prefix + hmac.new(_bytes(secret), body, hashlib.sha256).hexdigest()
    if not _same(presented.lower(), expected):
        raise Unauthorized("signature mismatch")


def check_github_signature(presented: str | None, body: bytes, secret: str) -> None:
    """Verify GitHub's `X-Hub-Signature-256` (`sha256=` + hex HMAC-SHA256 of the raw body);
    Unauthorized when it is missing or wrong."""
    _check_hex_hmac(presented, body, secret, prefix="sha256=")


def _check_token(presented: str | None, secret: str) -> None:
    if presented is None:
        raise Unauthorized("missing token")
    if not _same(presented, secret):
        raise Unauthorized("token mismatch")


def standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key a Standard Webhooks signature is made with: the decoded part of a
    `whsec_<base64>` secret, else the secret's UTF-8 bytes."""
    if secret.startswith("whsec_"):
        try:
            decoded = base64.b64decode(secret[len("whsec_") :], validate=True)
        except binascii.Error:
            decoded = b""
        if decoded:
            return decoded
    return _bytes(secret)


def _check_standard_webhook(found: _Headers, body: bytes, secret: str, now: float) -> None:
    message_id = found.get("webhook-id")
    timestamp = found.get("webhook-timestamp")
    signatures = found.get("webhook-signature")
    if message_id is None or timestamp is None or signatures is None:
        raise Unauthorized("missing signature")
    if not _TIMESTAMP.match(timestamp):
        raise Unauthorized("malformed signature timestamp")
    if abs(now - int(timestamp)) > SIGNATURE_TOLERANCE_SECONDS:
        raise Unauthorized("signature timestamp outside the accepted window")
    signed = _bytes(f"{message_id}.{timestamp}.") + body
    expected = hmac.new(standard_webhooks_key(secret), signed, hashlib.sha256).digest()
    matched = False
    for entry in signatures.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            presented = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        matched = hmac.compare_digest(presented, expected) or matched
    if not matched:
        raise Unauthorized("signature mismatch")


def _presented_secret(authorization: str | None) -> str | None:
    """The secret in `Authorization`: a Bearer token, or the password of Basic credentials."""
    if authorization is None:
        return None
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _user, colon, password = decoded.partition(":")
        return password if colon and password else None
    return None


def _delivery_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_DELIVERY_ID_LENGTH:
        raise InvalidInput(f"a delivery id must be a string of at most {MAX_DELIVERY_ID_LENGTH}")
    return value or None


def _json_object(raw: bytes | str, *, empty_is_object: bool = False) -> dict[str, Any]:
    if empty_is_object and not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput("body is not valid JSON") from exc
    if not isinstance(parsed, dict):
        raise InvalidInput("body must be a JSON object")
    return parsed


def _payload(found: _Headers, body: bytes) -> dict[str, Any]:
    """The JSON payload, sent as such or (GitHub, Gitea) form-encoded as `payload=<json>`."""
    content_type = (found.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != _FORM:
        return _json_object(body)
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("form body is not valid form encoding") from exc
    payload = fields.get("payload")
    if set(fields) != {"payload"} or payload is None or len(payload) != 1:
        raise InvalidInput("a form-encoded body must carry exactly one `payload` field")
    return _json_object(payload[0])


def _commit(value: object, field: str) -> str:
    if not isinstance(value, str) or not is_full_sha(value):
        shown = repr(value)[:80]
        raise InvalidInput(f"{field} {shown} is not a full lowercase hex commit SHA")
    return value


def _ref_target(ref: str) -> tuple[str, str] | None:
    """("branch" | "tag", name) for a full ref; None for other namespaces (notes, pulls, ...)."""
    for prefix, kind in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
        if ref.startswith(prefix):
            name = ref[len(prefix) :]
            if not name:
                raise InvalidInput(f"ref {ref!r} names no {kind}")
            return kind, name
    return None


def _required_ref(payload: Mapping[str, Any], field: str = "ref") -> str:
    ref = payload.get(field)
    if not isinstance(ref, str) or not ref:
        raise InvalidInput(f"a push without {field}")
    return ref


def _head_commit_id(payload: Mapping[str, Any]) -> object:
    head = payload.get("head_commit")
    return head.get("id") if isinstance(head, dict) else None


def _git_push(
    ref: str, after: object, tag_commit: object, sender: Sender, delivery_id: str | None
) -> Push | Ignored:
    """`ref` moved to `after` (all zeros: deleted); `tag_commit` is what a tag points at, if the
    sender says."""
    target = _ref_target(ref)
    if target is None:
        return Ignored(f"ref {ref!r} is neither a branch nor a tag", sender, delivery_id)
    kind, name = target
    if isinstance(after, str) and _ZERO_SHA.match(after):
        return Ignored(f"{kind} {name!r} was deleted", sender, delivery_id)
    if after is None:
        raise InvalidInput(f"a push of {ref!r} without a commit")
    commit = _commit(after, "commit")
    if kind == "branch":
        return Push(name, None, commit, delivery_id, sender)
    if tag_commit is not None:
        commit = _commit(tag_commit, "tag commit")
    return Push(None, name, commit, delivery_id, sender)


def _read_github(found: _Headers, body: bytes, secret: str) -> Delivery:
    _check_hex_hmac(found.get("x-hub-signature-256"), body, secret, prefix="sha256=")
    event = found.get("x-github-event")
    delivery_id = _delivery_id(found.get("x-github-delivery"))
    if event is None:
        raise InvalidInput("missing X-GitHub-Event header")
    if event == "ping":
        return Ping(Sender.GITHUB)
    if event != "push":
        return Ignored(
            f"GitHub event {event!r} does not trigger a sync", Sender.GITHUB, delivery_id
        )
    payload = _payload(found, body)
    return _git_push(
        _required_ref(payload),
        payload.get("after"),
        _head_commit_id(payload),
        Sender.GITHUB,
        delivery_id,
    )


def _read_gitea_like(
    found: _Headers, body: bytes, secret: str, sender: Sender, prefix: str
) -> Delivery:
    _check_hex_hmac(found.get(f"{prefix}-signature"), body, secret, prefix="")
    event = found.get(f"{prefix}-event")
    delivery_id = _delivery_id(found.get(f"{prefix}-delivery"))
    if event is None:
        raise InvalidInput(f"missing {prefix}-event header")
    if event != "push":
        return Ignored(f"{sender} event {event!r} does not trigger a sync", sender, delivery_id)
    payload = _payload(found, body)
    return _git_push(
        _required_ref(payload), payload.get("after"), _head_commit_id(payload), sender, delivery_id
    )


_GITLAB_PUSH_EVENTS = frozenset({"Push Hook", "Tag Push Hook"})
_GITLAB_PUSH_KINDS = frozenset({"push", "tag_push"})


def _read_gitlab(found: _Headers, body: bytes, secret: str, now: float) -> Delivery:
    # A signing token, once configured, is the stronger proof (body-bound, replay-limited), so a
    # delivery that carries a signature is judged by it alone.
    if found.get("webhook-signature") is not None:
        _check_standard_webhook(found, body, secret, now)
    else:
        _check_token(found.get("x-gitlab-token"), secret)
    event = found.get("x-gitlab-event")
    delivery_id = _delivery_id(
        found.get("x-gitlab-event-uuid") or found.get("idempotency-key") or found.get("webhook-id")
    )
    if event is None:
        raise InvalidInput("missing X-Gitlab-Event header")
    if event not in _GITLAB_PUSH_EVENTS and event != "System Hook":
        return Ignored(
            f"GitLab event {event!r} does not trigger a sync", Sender.GITLAB, delivery_id
        )
    payload = _payload(found, body)
    # System hooks name their kind in `event_name`; newer ones also carry `object_kind`.
    kind = payload.get("object_kind") or payload.get("event_name")
    if event == "System Hook" and kind not in _GITLAB_PUSH_KINDS:
        return Ignored(
            f"GitLab system hook {kind!r} does not trigger a sync", Sender.GITLAB, delivery_id
        )
    # checkout_sha is the commit a tag points at (after is the tag object for annotated tags).
    return _git_push(
        _required_ref(payload),
        payload.get("after"),
        payload.get("checkout_sha"),
        Sender.GITLAB,
        delivery_id,
    )


_BITBUCKET_PUSH_EVENTS = frozenset({"repo:push", "repo:refs_changed"})


def _read_bitbucket(found: _Headers, body: bytes, secret: str) -> Delivery:
    """Bitbucket Cloud (`repo:push`: `push.changes[]` of `new`/`old` refs, `new` null when one
    was deleted) or Data Center (`repo:refs_changed`: `changes[]` of `ref`, `toHash`, `type`)."""
    sender = Sender.BITBUCKET
    _check_hex_hmac(found.get("x-hub-signature"), body, secret, prefix="sha256=")
    event = found.get("x-event-key")
    delivery_id = _delivery_id(found.get("x-request-uuid") or found.get("x-request-id"))
    if event == "diagnostics:ping":
        return Ping(sender)
    if event not in _BITBUCKET_PUSH_EVENTS:
        return Ignored(f"Bitbucket event {event!r} does not trigger a sync", sender, delivery_id)
    payload = _payload(found, body)
    push = payload.get("push")
    changes = push.get("changes") if isinstance(push, dict) else payload.get("changes")
    if not isinstance(changes, list) or not changes:
        raise InvalidInput(f"a Bitbucket {event} without changes")
    results: list[Push | Ignored] = []
    for entry in changes:
        if not isinstance(entry, dict):
            raise InvalidInput("Bitbucket changes must be objects")
        if isinstance(push, dict):
            results.append(_bitbucket_cloud_change(entry, delivery_id))
        else:
            ref = entry.get("ref")
            ref_id = ref.get("id") if isinstance(ref, dict) else entry.get("refId")
            if not isinstance(ref_id, str) or not ref_id:
                raise InvalidInput("a Bitbucket change without ref")
            results.append(_git_push(ref_id, entry.get("toHash"), None, sender, delivery_id))
    return _one_or_every(results, sender, delivery_id)


def _bitbucket_cloud_change(entry: Mapping[str, Any], delivery_id: str | None) -> Push | Ignored:
    sender = Sender.BITBUCKET
    new, old = entry.get("new"), entry.get("old")
    if new is None:
        kind, name = (old.get("type"), old.get("name")) if isinstance(old, dict) else (None, None)
        return Ignored(f"{kind or 'ref'} {name!r} was deleted", sender, delivery_id)
    if not isinstance(new, dict) or new.get("type") not in ("branch", "tag"):
        raise InvalidInput("a Bitbucket change whose new ref is neither a branch nor a tag")
    name, target = new.get("name"), new.get("target")
    if not isinstance(name, str) or not name:
        raise InvalidInput("a Bitbucket change without a ref name")
    prefix = "refs/heads/" if new["type"] == "branch" else "refs/tags/"
    commit = target.get("hash") if isinstance(target, dict) else None
    return _git_push(prefix + name, commit, None, sender, delivery_id)


def _one_or_every(
    results: list[Push | Ignored], sender: Sender, delivery_id: str | None
) -> Push | Ignored:
    """What a push of several refs asks for: the one ref it moved, every branch when it moved
    several, or nothing when it only deleted."""
    moved = [r for r in results if isinstance(r, Push)]
    if not moved:
        ignored = [r for r in results if isinstance(r, Ignored)]
        if len(ignored) == 1:
            return ignored[0]
        return Ignored("the push moved no branch or tag", sender, delivery_id)
    if len(moved) == 1:
        return moved[0]
    return Push(None, None, None, delivery_id, sender)


def _read_authorized(found: _Headers, body: bytes, secret: str) -> Delivery:
    presented = _presented_secret(found.get("authorization"))
    if presented is None:
        raise Unauthorized("missing token")
    if not _same(presented, secret):
        raise Unauthorized("token mismatch")
    payload = _json_object(body, empty_is_object=True)
    if "eventType" in payload and "resource" in payload:
        return _read_azure(payload)
    return _read_generic(payload, _delivery_id(found.get("idempotency-key")))


def _read_azure(payload: Mapping[str, Any]) -> Delivery:
    """An Azure DevOps service hook: `git.push` moves refs, other event types are ignored."""
    sender = Sender.AZURE_DEVOPS
    delivery_id = _delivery_id(payload.get("id"))
    event_type = payload.get("eventType")
    if event_type != "git.push":
        return Ignored(
            f"Azure DevOps event {event_type!r} does not trigger a sync", sender, delivery_id
        )
    resource = payload.get("resource")
    updates = resource.get("refUpdates") if isinstance(resource, dict) else None
    if not isinstance(updates, list) or not updates:
        raise InvalidInput("a git.push without resource.refUpdates")
    results: list[Push | Ignored] = []
    for update in updates:
        if not isinstance(update, dict):
            raise InvalidInput("resource.refUpdates entries must be objects")
        results.append(
            _git_push(
                _required_ref(update, "name"), update.get("newObjectId"), None, sender, delivery_id
            )
        )
    return _one_or_every(results, sender, delivery_id)


def _read_generic(payload: Mapping[str, Any], delivery_id: str | None) -> Push:
    """A generic sender: optional `ref` (full ref or branch name) or `branch`, optional `commit`."""
    sender = Sender.GENERIC
    named = payload.get("ref", payload.get("branch"))
    commit = payload.get("commit")
    if named is None:
        if commit is not None:
            raise InvalidInput("a commit needs the branch it was pushed to (ref or branch)")
        return Push(None, None, None, delivery_id, sender)
    if not isinstance(named, str) or not named.strip():
        raise InvalidInput("ref/branch must be a non-empty string")
    named = named.strip()
    target = _ref_target(named) if named.startswith("refs/") else ("branch", named)
    if target is None:
        raise InvalidInput(
            f"ref {named!r} is neither a branch (refs/heads/) nor a tag (refs/tags/)"
        )
    kind, name = target
    checked = None if commit is None else _commit(commit, "commit")
    if kind == "branch":
        return Push(name, None, checked, delivery_id, sender)
    return Push(None, name, checked, delivery_id, sender)
