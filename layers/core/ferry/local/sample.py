"""The sample repository `ferry up` creates: one small compose app, in a real git repository."""

from __future__ import annotations

from pathlib import Path

from dulwich import porcelain
from dulwich.refs import Ref
from dulwich.repo import Repo

SAMPLE_BRANCH = "main"
SAMPLE_COMPOSE_PATH = "hello/compose.yaml"
SAMPLE_APPLICATION = "hello"
_AUTHOR = b"Ferry <ferry@localhost>"


def sample_compose(image: str, greeting: str = "hello from ferry") -> str:
    """The sample app: busybox httpd serving one page, with a health check."""
    return f"""services:
  web:
    image: {image}
    command:
      - sh
      - -c
      - mkdir -p /www && echo '{greeting}' > /www/index.html && exec httpd -f -p 8080 -h /www
    # httpd as PID 1 ignores SIGTERM: without this each redeploy waits Docker's 10 s stop timeout.
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 2s
      timeout: 2s
      retries: 3
"""


def choose_sample_image() -> tuple[str, str]:
    """Pick the sample's image when the stack starts; returns (image, why).

    A local build when one exists, else the public busybox when a registry answers, else a local
    build from the host's static busybox. Without a Docker daemon the public name is used and the
    deploy itself reports the missing daemon.
    """
    import docker
    import docker.errors

    from ferry_agent.images import PUBLIC_BUSYBOX_IMAGE, ImageUnavailable, busybox_image

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException:
        return PUBLIC_BUSYBOX_IMAGE, "no Docker daemon answers; deploys will say so"
    try:
        image = busybox_image(client)
    except (ImageUnavailable, docker.errors.DockerException) as exc:
        return PUBLIC_BUSYBOX_IMAGE, f"could not prepare an image ({exc})"
    return image, "found locally" if image.startswith("ferry-local/") else "from the registry"


def commit_file(repo_path: Path, relative: str, content: str, message: str) -> str:
    """Write a file into a working repository, commit it on the current branch; returns the SHA."""
    target = repo_path / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    porcelain.add(str(repo_path), [str(target)])
    sha = porcelain.commit(
        str(repo_path), message=message.encode(), author=_AUTHOR, committer=_AUTHOR
    )
    return sha.decode()


def create_sample_repository(repo_path: Path, image: str) -> str:
    """Create the sample repository on branch main; returns the first commit's SHA."""
    repo_path.mkdir(parents=True, exist_ok=True)
    repo = Repo.init(str(repo_path))
    repo.refs.set_symbolic_ref(Ref(b"HEAD"), Ref(f"refs/heads/{SAMPLE_BRANCH}".encode()))
    repo.close()
    (repo_path / "README.md").write_text(
        "# Ferry sample\n\n"
        "Commit a change to hello/compose.yaml and call the webhook to redeploy.\n"
    )
    porcelain.add(str(repo_path), [str(repo_path / "README.md")])
    return commit_file(repo_path, SAMPLE_COMPOSE_PATH, sample_compose(image), "Add the hello app")


def head_commit(repo_path: Path, branch: str = SAMPLE_BRANCH) -> str:
    with Repo(str(repo_path)) as repo:
        return repo.refs[Ref(f"refs/heads/{branch}".encode())].decode()
