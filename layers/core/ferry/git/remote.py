"""Generic git over HTTPS and SSH: shallow fetches into a bare repository cached per repository,
then objects are read from disk the way `local.py` reads a local repository.

How the network is reached:
- HTTPS goes through dulwich with its HTTP layer replaced by `ferry.outbound.http.safe_client`,
  so every connection (and every redirect hop) is resolved, vetted and dialled by the same code
  as every other outbound request; credentials are only sent to the repository's own origin.
- SSH goes through dulwich with a paramiko vendor whose socket is opened to an address
  `check_destination` vetted (no second lookup), authenticated with the deploy key only (no agent,
  no keys from ~/.ssh). Host keys are trusted on first use and kept in `<cache_dir>/known_hosts`
  ("accept-new"): a key that changes later is refused. Seed that file to pin keys up front.

The cache: `<cache_dir>/<key>/` is a bare repository, the key a digest of the URL and the
credentials (so two repository records with different credentials never share objects). A
branch's latest commit always asks the remote (one connection; the pack is only fetched when
the head is new); a commit that is already cached is read without any network; a missing one
is fetched once by SHA (protocol v2 lets a client want any commit; over protocol v0, where
servers only serve branch tips, the branches are fetched with their history instead) and is a
GitError if it is still missing. `branches_containing` fetches the branches' whole history (git
has no cheaper way to answer it) and walks it locally. Fetches of one repository are serialised by
a file lock, so threads and processes can share a cache directory.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import paramiko  # type: ignore[import-untyped]
from dulwich.client import (
    AbstractHttpGitClient,
    GitClient,
    SSHGitClient,
    SSHVendor,
    SubprocessWrapper,
)
from dulwich.errors import GitProtocolError, HangupException, NotGitRepository
from dulwich.object_store import tree_lookup_path
from dulwich.objects import Blob, Commit, ObjectID
from dulwich.refs import Ref
from dulwich.repo import Repo

from ferry.domain.bundle import TreeEntry
from ferry.domain.models import CommitInfo, CredentialKind, RepositoryCredentials
from ferry.errors import GitError, TransientError
from ferry.git.http import (
    ProviderRateLimited,
    basic_authorization,
    is_rate_limited,
    provider_message,
    retry_after_seconds,
)
from ferry.git.source import (
    check_branch,
    check_sha,
    clean_path,
    decode_text,
)
from ferry.git.trees import blob_data, tree_entries
from ferry.outbound.http import (
    AllowSpec,
    DestinationRefused,
    check_destination,
    resolve_allow_list,
    safe_client,
)

DEFAULT_TIMEOUT_SECONDS = 30.0
# A token over HTTPS goes as the password; the user name is ignored by GitLab, Gitea and Azure
# DevOps, and is the documented one for GitHub tokens.
TOKEN_USERNAME = "x-access-token"  # noqa: S105 - a user name, not a secret
DEFAULT_SSH_USERNAME = "git"
_HEADS = b"refs/heads/"
# git's "infinite" depth: deepening a shallow clone to it fetches the whole history.
_FULL_DEPTH = 0x7FFFFFFF
# [user@]host:path, with no slash before the colon (git's rule for scp-like SSH URLs).
_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[^@/:]+):(?P<path>(?!//).+)$")


@dataclass(frozen=True)
class RemoteAddress:
    """A parsed remote: transport, where to connect, the repository path, and any user name or
    password the URL itself carried (`display` never carries them)."""

    transport: str  # "http" or "ssh"
    scheme: str
    host: str
    port: int | None
    path: str
    username: str | None
    password: str | None

    @property
    def display(self) -> str:
        """The URL without user info: for messages and the cache key."""
        if self.transport == "ssh":
            port = f":{self.port}" if self.port is not None else ""
            return f"ssh://{self.host}{port}/{self.path.lstrip('/')}"
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}://{self.host}{port}{self.path}"


def parse_remote_url(url: str) -> RemoteAddress:
    """Parse an https://, http://, ssh:// or scp-like (`git@host:owner/repo.git`) git URL."""
    text = url.strip()
    if "://" not in text:
        scp = _SCP_LIKE.match(text)
        if scp is None:
            raise GitError(f"{text!r} is not a git URL (https://, ssh:// or user@host:path)")
        return RemoteAddress(
            transport="ssh",
            scheme="ssh",
            host=scp.group("host"),
            port=None,
            path=scp.group("path"),
            username=scp.group("user"),
            password=None,
        )
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http", "ssh") or not parts.hostname:
        raise GitError(
            f"cannot read {scheme or 'scheme-less'} URLs from a remote: "
            "use https://, ssh:// or user@host:path"
        )
    try:
        port = parts.port
    except ValueError:
        raise GitError("the repository URL has an invalid port") from None
    if not parts.path.strip("/"):
        raise GitError("the repository URL names no repository path")
    return RemoteAddress(
        transport="ssh" if scheme == "ssh" else "http",
        scheme=scheme,
        host=parts.hostname,
        port=port,
        path=parts.path,
        username=parts.username,
        password=parts.password,
    )


class RemoteGitSource:
    """A repository behind an HTTPS or SSH git URL, read through a local shallow cache (see the
    module docstring). Also answers `list_branches` (an ls-remote), `list_tree` and
    `branches_containing`, so it is a full `ProviderSource`."""

    def __init__(
        self,
        url: str,
        credentials: RepositoryCredentials | None,
        cache_dir: str | Path,
        *,
        allow: AllowSpec = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._address = parse_remote_url(url)
        self._credentials = credentials
        self._allow = resolve_allow_list(allow)
        self._timeout = timeout
        self._cache_root = Path(cache_dir)
        self.cache_path = self._cache_root / _cache_key(self._address, credentials)
        self._check_credentials()

    @property
    def url(self) -> str:
        """The repository URL without user info."""
        return self._address.display

    def latest_commit(self, branch: str) -> CommitInfo:
        """The commit the branch points at on the remote now (fetched when it is new)."""
        check_branch(branch)
        ref = Ref(_HEADS + branch.encode())
        with self._fetch_lock(), self._repo() as repo:

            def wants(refs: Mapping[Ref, ObjectID], depth: int | None = None) -> list[ObjectID]:
                head = refs.get(ref)
                return [] if head is None or head in repo.object_store else [head]

            head = self._fetch(repo, wants, depth=1, ref_prefix=[ref]).get(ref)
            if head is None:
                raise GitError(f"branch {branch!r} does not exist in {self.url}")
            repo.refs[ref] = head
            return _commit_info(_commit(repo, head.decode()))

    def commit(self, sha: str) -> CommitInfo:
        """A commit by full SHA, from the cache or fetched once."""
        check_sha(sha)
        self._ensure(sha)
        with self._repo() as repo:
            return _commit_info(_commit(repo, sha))

    def read_file(self, sha: str, path: str) -> str:
        """A file's text at a commit, from the cache or fetched once."""
        check_sha(sha)
        path = clean_path(path)
        self._ensure(sha)
        with self._repo() as repo:
            commit = _commit(repo, sha)
            try:
                _mode, blob_sha = tree_lookup_path(repo.__getitem__, commit.tree, path.encode())
            except KeyError:
                raise GitError(f"{path} does not exist at commit {sha[:12]}") from None
            blob = repo[blob_sha]
            if not isinstance(blob, Blob):
                raise GitError(f"{path} is not a file at commit {sha[:12]}")
            return decode_text(blob.data, path)

    def read_tree(self, sha: str, path: str = "") -> list[TreeEntry]:
        """The files below `path` at a commit, from the cache or fetched once."""
        check_sha(sha)
        self._ensure(sha)
        with self._repo() as repo:
            return tree_entries(repo, _commit(repo, sha), path)

    def read_blob(self, sha: str, entry: TreeEntry) -> bytes:
        """A listed file's content, from the cache (`read_tree` fetched the commit)."""
        check_sha(sha)
        self._ensure(sha)
        with self._repo() as repo:
            return blob_data(repo, sha, entry)

    def list_branches(self) -> list[str]:
        """Every branch on the remote (an ls-remote; nothing is fetched)."""
        client, path = self._client()
        try:
            with self._translated():
                result = client.get_refs(path.encode(), protocol_version=2, ref_prefix=[_HEADS])
        finally:
            client.close()
        return sorted(
            name[len(_HEADS) :].decode("utf-8", errors="replace")
            for name, value in result.refs.items()
            if name.startswith(_HEADS) and value is not None
        )

    def list_tree(self, sha: str, path: str = "") -> list[str]:
        """The file paths at a commit (under `path` when given), sorted; submodules left out."""
        check_sha(sha)
        prefix = clean_path(path)
        self._ensure(sha)
        with self._repo() as repo:
            commit = _commit(repo, sha)
            names = [
                entry.path.decode("utf-8", errors="replace")
                for entry in repo.object_store.iter_tree_contents(commit.tree)
                if entry.path is not None
                and entry.mode is not None
                and (stat.S_ISREG(entry.mode) or stat.S_ISLNK(entry.mode))
            ]
        return sorted(name for name in names if not prefix or name.startswith(f"{prefix}/"))

    def close(self) -> None:
        """Nothing to release: each operation opens and closes its own connection."""

    def contains(self, descendant: str, ancestor: str) -> bool:
        """Both commits are brought into the cache; the history between them may need a deeper
        fetch (once per repository: later calls only fetch what is new)."""
        check_sha(descendant)
        check_sha(ancestor)
        if descendant == ancestor:
            self.commit(descendant)
            return True
        with self._fetch_lock(), self._repo() as repo:
            self._fetch(repo, _all_heads, depth=_FULL_DEPTH, ref_prefix=[_HEADS])
        self._ensure(descendant)
        self._ensure(ancestor)
        with self._repo() as repo:
            return _reaches(repo, ObjectID(descendant.encode()), ObjectID(ancestor.encode()))

    def branches_containing(self, sha: str) -> list[str]:
        """The branches whose history includes the commit, sorted; GitError when the remote
        does not have it. Generic git has no API for this, so the branches are fetched with
        their whole history (once: later calls only fetch what is new) and walked locally."""
        check_sha(sha)
        wanted = ObjectID(sha.encode())
        with self._fetch_lock():
            with self._repo() as repo:
                heads = self._fetch(repo, _all_heads, depth=_FULL_DEPTH, ref_prefix=[_HEADS])
            # Reopened: the handle that fetched still holds the shallow boundary it started with.
            with self._repo() as repo:
                if wanted not in repo.object_store:
                    raise GitError(f"commit {sha} is not in {self.url}")
                return sorted(
                    name[len(_HEADS) :].decode("utf-8", errors="replace")
                    for name, head in heads.items()
                    if name.startswith(_HEADS) and head is not None and _reaches(repo, head, wanted)
                )

    def _ensure(self, sha: str) -> None:
        """Make sure the commit is in the cache: one fetch when it is not, then GitError."""
        wanted = ObjectID(sha.encode())
        with self._repo() as repo:
            if wanted in repo.object_store:
                return
        with self._fetch_lock(), self._repo() as repo:
            if wanted in repo.object_store:
                return

            def want_sha(refs: Mapping[Ref, ObjectID], depth: int | None = None) -> list[ObjectID]:
                return [wanted]

            try:
                self._fetch(repo, want_sha, depth=1, refusable=True)
            except _FetchRefused as refused:
                if refused.protocol_version == 2:
                    raise GitError(f"commit {sha} is not in {self.url}") from refused
                # Protocol v0 servers only serve what they advertise: bring the branches with
                # their history instead, and look again.
                self._fetch(repo, _all_heads, depth=_FULL_DEPTH, ref_prefix=[_HEADS])
            if wanted not in repo.object_store:
                raise GitError(f"commit {sha} is not in {self.url}")

    def _fetch(
        self,
        repo: Repo,
        determine_wants: Callable[..., list[ObjectID]],
        *,
        depth: int,
        ref_prefix: list[bytes] | None = None,
        refusable: bool = False,
    ) -> Mapping[Ref, ObjectID | None]:
        client, path = self._client()
        try:
            with self._translated(refusals=client if refusable else None):
                result = client.fetch(
                    path,
                    repo,
                    determine_wants=determine_wants,
                    depth=depth,
                    ref_prefix=ref_prefix,
                    protocol_version=2,
                )
        finally:
            client.close()
        return result.refs

    def _client(self) -> tuple[GitClient, str]:
        address = self._address
        if address.transport == "ssh":
            vendor = _ParamikoVendor(
                key=_private_key(self._credentials),
                known_hosts=self._cache_root / "known_hosts",
                allow=self._allow,
                timeout=self._timeout,
            )
            username = address.username or (
                self._credentials.username if self._credentials is not None else None
            )
            ssh_client = SSHGitClient(
                address.host,
                port=address.port,
                username=username or DEFAULT_SSH_USERNAME,
                vendor=vendor,
            )
            return ssh_client, address.path
        port = f":{address.port}" if address.port is not None else ""
        origin = f"{address.scheme}://{address.host}{port}/"
        http_client = _SafeHttpGitClient(
            origin,
            http=safe_client(allow=self._allow, timeout=self._timeout),
            authorization=self._authorization(),
        )
        return http_client, address.path

    def _authorization(self) -> str | None:
        credentials = self._credentials
        if credentials is None:
            if self._address.username is None:
                return None
            return basic_authorization(self._address.username, self._address.password or "")
        return basic_authorization(credentials.username or TOKEN_USERNAME, credentials.secret)

    def _check_credentials(self) -> None:
        kind = self._credentials.kind if self._credentials is not None else None
        if self._address.transport == "ssh" and kind is not CredentialKind.SSH_KEY:
            raise GitError(f"{self.url} is an SSH URL: the repository needs an SSH deploy key")
        if self._address.transport == "http" and kind is CredentialKind.SSH_KEY:
            raise GitError(
                f"{self.url} is an HTTPS URL: a deploy key only works with an SSH URL "
                "(ssh://... or git@host:path)"
            )

    @contextmanager
    def _repo(self) -> Iterator[Repo]:
        if not self.cache_path.is_dir():
            self._create_cache()
        repo = Repo(str(self.cache_path))
        try:
            yield repo
        finally:
            repo.close()

    def _create_cache(self) -> None:
        # Built aside and renamed into place: a reader never sees a half-made repository, and
        # whoever renames second just drops theirs.
        self._cache_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{self.cache_path.name}.", dir=self._cache_root))
        Repo.init_bare(str(staging)).close()
        try:
            staging.rename(self.cache_path)
        except OSError:
            if not self.cache_path.is_dir():
                raise
            shutil.rmtree(staging, ignore_errors=True)

    @contextmanager
    def _fetch_lock(self) -> Iterator[None]:
        self._cache_root.mkdir(parents=True, exist_ok=True)
        lock_path = self.cache_path.with_name(f"{self.cache_path.name}.lock")
        with open(lock_path, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    @contextmanager
    def _translated(self, refusals: GitClient | None = None) -> Iterator[None]:
        """Transport and protocol failures as domain errors, credentials never in the text.
        With `refusals`, a server that refuses what was asked raises _FetchRefused instead."""
        where = self._address.host
        try:
            yield
        except (GitError, TransientError):
            raise
        except paramiko.BadHostKeyException as exc:
            raise GitError(
                f"the SSH host key of {where} changed since Ferry first connected "
                f"(see {self._cache_root / 'known_hosts'}); refusing to connect"
            ) from exc
        except paramiko.AuthenticationException as exc:
            raise GitError(
                f"SSH authentication to {where} failed: the deploy key was refused"
            ) from exc
        except DestinationRefused as exc:
            raise GitError(str(exc)) from exc
        except NotGitRepository as exc:
            raise GitError(f"{self.url} is not a git repository") from exc
        except HangupException as exc:
            if refusals is not None:
                raise _FetchRefused(refusals.protocol_version, str(exc)) from exc
            raise GitError(f"{where} closed the git connection: {exc}") from exc
        except GitProtocolError as exc:
            if refusals is not None:
                raise _FetchRefused(refusals.protocol_version, str(exc)) from exc
            raise GitError(f"git protocol error talking to {where}: {exc}") from exc
        except TimeoutError as exc:
            raise TransientError(f"{where} did not answer within {self._timeout:g} s") from exc
        except paramiko.SSHException as exc:
            raise TransientError(f"SSH connection to {where} failed: {exc}") from exc
        except OSError as exc:
            raise TransientError(f"cannot reach {where}: {exc}") from exc


class _FetchRefused(Exception):
    """The server ended the fetch instead of sending what we asked for (git upload-pack dies
    with "not our ref"; over HTTP only the hang-up shows)."""

    def __init__(self, protocol_version: int, detail: str) -> None:
        super().__init__(detail)
        self.protocol_version = protocol_version


def _reaches(repo: Repo, head: ObjectID, wanted: ObjectID) -> bool:
    """Whether `wanted` is `head` or one of its ancestors (walked newest first)."""
    if head == wanted:
        return True
    try:
        return any(entry.commit.id == wanted for entry in repo.get_walker(include=[head]))
    except KeyError:
        # A parent beyond a shallow boundary the server did not deepen: not reachable here.
        return False


def _all_heads(refs: Mapping[Ref, ObjectID], depth: int | None = None) -> list[ObjectID]:
    return sorted({sha for name, sha in refs.items() if name.startswith(_HEADS)})


def _cache_key(address: RemoteAddress, credentials: RepositoryCredentials | None) -> str:
    digest = hashlib.sha256(b"ferry-git-cache\0")
    digest.update(address.display.encode())
    if credentials is not None:
        for part in (credentials.kind.value, credentials.username or "", credentials.secret):
            digest.update(b"\0" + part.encode())
    elif address.username is not None:
        digest.update(f"\0url\0{address.username}\0{address.password or ''}".encode())
    return digest.hexdigest()[:32]


def _commit(repo: Repo, sha: str) -> Commit:
    try:
        obj = repo[sha.encode()]
    except KeyError:
        raise GitError(f"commit {sha} is not in the repository") from None
    if not isinstance(obj, Commit):
        raise GitError(f"{sha} is not a commit")
    return obj


def _commit_info(commit: Commit) -> CommitInfo:
    message = commit.message.decode("utf-8", errors="replace").strip()
    return CommitInfo(sha=commit.id.decode(), message=message)


def _private_key(credentials: RepositoryCredentials | None) -> Any:
    """The deploy key as a paramiko key (RSA, ECDSA or Ed25519; PEM or OpenSSH format)."""
    if credentials is None or credentials.kind is not CredentialKind.SSH_KEY:
        raise GitError("an SSH URL needs an SSH deploy key")
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(credentials.secret))
        except paramiko.PasswordRequiredException:
            raise GitError(
                "the deploy key is encrypted: Ferry needs it without a passphrase"
            ) from None
        except (paramiko.SSHException, ValueError):
            continue
    raise GitError("the deploy key is not an RSA, ECDSA or Ed25519 private key")


class _HttpResponse:
    """An httpx streaming response in the shape dulwich reads (urllib3's): `status`, `headers`,
    `content_type`, `redirect_location`, `read(n)`, `geturl()`, `close()`."""

    def __init__(
        self, response: httpx.Response, requested: str, where: str, timeout: float
    ) -> None:
        self._response = response
        self._chunks = response.iter_bytes()
        self._buffer = bytearray()
        self._where = where
        self._timeout = timeout
        self.status = response.status_code
        self.headers = response.headers
        self.content_type = response.headers.get("content-type")
        final = str(response.url)
        self.redirect_location = final if final != requested else ""

    def read(self, amt: int | None = None) -> bytes:
        try:
            while amt is None or len(self._buffer) < amt:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._buffer.extend(chunk)
        except httpx.TimeoutException as exc:
            raise TransientError(
                f"{self._where} stopped sending within {self._timeout:g} s"
            ) from exc
        except httpx.TransportError as exc:
            raise TransientError(f"connection to {self._where} broke: {exc}") from exc
        size = len(self._buffer) if amt is None else min(amt, len(self._buffer))
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def geturl(self) -> str:
        return str(self._response.url)

    def close(self) -> None:
        self._response.close()


class _SafeHttpGitClient(AbstractHttpGitClient):
    """dulwich's smart-HTTP client speaking through `safe_client` (see the module docstring)."""

    def __init__(self, base_url: str, *, http: httpx.Client, authorization: str | None) -> None:
        super().__init__(base_url)
        self._http = http
        self._authorization = authorization
        self._origin = _origin(base_url)

    def close(self) -> None:
        self._http.close()

    def _get_url(self, path: str | bytes) -> str:
        text = path if isinstance(path, str) else path.decode("utf-8")
        return urljoin(self._base_url, text).rstrip("/") + "/"

    def _http_request(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        data: bytes | Iterator[bytes] | None = None,
        raise_for_status: bool = True,
    ) -> tuple[Any, Callable[[int], bytes]]:
        request_headers = {"Pragma": "no-cache", **(headers or {})}
        # Credentials only for the repository's origin; httpx also drops them on redirects
        # that leave it.
        if self._authorization is not None and _origin(url) == self._origin:
            request_headers["Authorization"] = self._authorization
        request = self._http.build_request(
            "GET" if data is None else "POST", url, headers=request_headers, content=data
        )
        where = request.url.host
        try:
            response = self._http.send(request, stream=True)
        except DestinationRefused as exc:
            raise GitError(str(exc)) from exc
        except httpx.TimeoutException as exc:
            raise TransientError(f"{where} did not answer within the timeout") from exc
        except httpx.TooManyRedirects as exc:
            raise GitError(f"{where} redirected too often") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"cannot reach {where}: {exc}") from exc
        if raise_for_status and response.status_code != 200:
            self._raise_for_status(response, where)
        wrapped = _HttpResponse(response, url, where, self._http.timeout.read or 0.0)
        return wrapped, wrapped.read

    def _raise_for_status(self, response: httpx.Response, where: str) -> None:
        response.read()
        response.close()
        status = response.status_code
        message = provider_message(response)
        if is_rate_limited(response):
            wait = retry_after_seconds(response)
            advice = f"; retry in {wait:.0f} s" if wait is not None else ""
            raise ProviderRateLimited(f"{where} rate limit reached (HTTP {status}){advice}", wait)
        if status == 401:
            if self._authorization is None:
                raise GitError(f"{where} requires credentials (HTTP 401)")
            raise GitError(f"{where} rejected the repository's credentials (HTTP 401)")
        if status == 403:
            raise GitError(
                f"{where} refused access (HTTP 403: {message}): "
                "the credentials lack permission to read this repository"
            )
        if status == 404:
            raise GitError(f"no git repository at {response.request.url.copy_with(query=None)}")
        if status >= 500:
            raise TransientError(f"{where} failed (HTTP {status}); try again")
        raise GitError(f"{where} refused the request (HTTP {status}: {message})")


def _origin(url: str) -> tuple[str, str, int | None]:
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.host, parsed.port


class _AcceptNewHostKeys:
    """paramiko host key policy "accept-new": an unknown host's key is recorded (appended to
    known_hosts under a lock, so concurrent first connections do not lose entries); a known
    host presenting another key is refused by paramiko itself (BadHostKeyException)."""

    def __init__(self, known_hosts: Path) -> None:
        self._known_hosts = known_hosts

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        line = paramiko.hostkeys.HostKeyEntry([hostname], key).to_line()
        lock_path = self._known_hosts.with_name(f"{self._known_hosts.name}.lock")
        with open(lock_path, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                known = paramiko.HostKeys()
                if self._known_hosts.exists():
                    known.load(str(self._known_hosts))
                recorded = known.lookup(hostname)
                if recorded is not None and key.get_name() in recorded:
                    if recorded[key.get_name()] != key:
                        raise paramiko.BadHostKeyException(hostname, key, recorded[key.get_name()])
                else:
                    with open(self._known_hosts, "a", encoding="ascii") as handle:
                        handle.write(line)
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        client.get_host_keys().add(hostname, key.get_name(), key)


class _ParamikoVendor(SSHVendor):
    """dulwich's SSH vendor interface over paramiko, dialling only vetted addresses."""

    def __init__(self, *, key: Any, known_hosts: Path, allow: Any, timeout: float) -> None:
        self._key = key
        self._known_hosts = known_hosts
        self._allow = allow
        self._timeout = timeout

    def run_command(
        self,
        host: str,
        command: bytes,
        username: str | None = None,
        port: int | None = None,
        password: str | None = None,
        key_filename: str | None = None,
        ssh_command: str | None = None,
        protocol_version: int | None = None,
    ) -> SubprocessWrapper:
        port = port or 22
        sock = self._connect(host, port)
        client = paramiko.SSHClient()
        try:
            self._known_hosts.parent.mkdir(parents=True, exist_ok=True)
            self._known_hosts.touch(exist_ok=True)
            client.load_host_keys(str(self._known_hosts))
            client.set_missing_host_key_policy(_AcceptNewHostKeys(self._known_hosts))
            client.connect(
                host,
                port=port,
                username=username,
                pkey=self._key,
                sock=sock,
                timeout=self._timeout,
                banner_timeout=self._timeout,
                auth_timeout=self._timeout,
                channel_timeout=self._timeout,
                allow_agent=False,
                look_for_keys=False,
            )
            channel = client.get_transport().open_session(timeout=self._timeout)
            channel.settimeout(self._timeout)
            if protocol_version == 2:
                # Servers that do not AcceptEnv it answer in protocol v0, which dulwich handles.
                channel.set_environment_variable("GIT_PROTOCOL", "version=2")
            channel.exec_command(command.decode("utf-8"))
        except BaseException:
            client.close()
            sock.close()
            raise
        return _ChannelWrapper(client, channel)

    def _connect(self, host: str, port: int) -> socket.socket:
        addresses = check_destination(host, port, self._allow)
        failure: OSError | None = None
        for address in addresses:
            try:
                return socket.create_connection((str(address), port), timeout=self._timeout)
            except OSError as exc:
                failure = exc
        raise failure or OSError(f"{host} has no address to connect to")


class _ChannelWrapper(SubprocessWrapper):
    """A paramiko channel with the interface dulwich expects of an SSH command."""

    def __init__(self, client: Any, channel: Any) -> None:
        # SubprocessWrapper's own __init__ wants a subprocess; only its interface is reused.
        self._client = client
        self._channel = channel
        self._stderr = channel.makefile_stderr("rb")
        self.read = self._read
        self.write = self._write

    @property
    def stderr(self) -> Any:
        return self._stderr

    def can_read(self) -> bool:
        return bool(self._channel.recv_ready())

    def close(self, timeout: int | None = 60) -> None:
        self._channel.close()
        self._client.close()

    def _read(self, n: int | None = None) -> bytes:
        chunks = bytearray()
        while n is None or len(chunks) < n:
            chunk = self._channel.recv(65536 if n is None else n - len(chunks))
            if not chunk:
                break
            chunks.extend(chunk)
        return bytes(chunks)

    def _write(self, data: Any) -> int:
        self._channel.sendall(data)
        return len(data)
