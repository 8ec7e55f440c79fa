"""What Ferry accepts from people before it stores anything: names, branch names, URLs, paths.

Pure checks, each returning the cleaned value or raising InvalidInput with a one-line reason that
never echoes the offending text itself (it may hold terminal escapes, or a secret). Limits keep
every record well inside DynamoDB's item size and every value printable in a terminal.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from ferry.errors import InvalidInput

MAX_NAME_LENGTH = 100
MAX_URL_LENGTH = 2048
MAX_BRANCH_LENGTH = 255
MAX_PATH_LENGTH = 1024
MAX_LIST_ENTRIES = 100
MAX_SECRET_LENGTH = 16 * 1024  # an RSA 4096 PEM key is about 3.3 KiB

# Control (Cc), format (Cf: bidi overrides, zero-width characters), surrogate (Cs), private use
# (Co), unassigned (Cn), and the line and paragraph separators (Zl, Zp): none of them is visible
# text, and several change how a terminal shows what follows them.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# git's ref-name rules (`git help check-ref-format`): characters no ref may hold anywhere, and
# sequences no ref may contain.
_REF_FORBIDDEN = frozenset(" ~^:?*[\\\x7f")
_REF_SEQUENCES = ("..", "@{", "//")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# [user@]host:path with no slash before the colon: git's rule for scp-like SSH addresses.
_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[^@/:]+):(?!//)")


def unprintable_character(text: str) -> str | None:
    """`U+XXXX` of the first character of `text` that is not printable text, else None."""
    for character in text:
        if unicodedata.category(character) in _UNPRINTABLE:
            return f"U+{ord(character):04X}"
    return None


def check_text(text: str, what: str, *, max_length: int) -> str:
    """`text` unchanged if it is printable and at most `max_length` characters, else
    InvalidInput naming `what` (the field) and the first offending character's code point."""
    if len(text) > max_length:
        raise InvalidInput(f"{what} must be at most {max_length} characters")
    found = unprintable_character(text)
    if found is not None:
        raise InvalidInput(f"{what} must be printable text (it contains {found})")
    return text


def clean_name(name: str, what: str) -> str:
    """A name as stored: trimmed, not empty, at most MAX_NAME_LENGTH characters, printable.

    `what` names the field in the error ("agent name"). Control and format characters (NUL,
    newlines, ANSI escapes, bidi overrides, zero-width joiners) are refused, not stripped: a
    name is shown back exactly as it was given.
    """
    name = name.strip()
    if not name:
        raise InvalidInput(f"{what} must not be empty")
    return check_text(name, what, max_length=MAX_NAME_LENGTH)


def normalize_name(name: str) -> str:
    """The form two names are compared in: NFKC, trimmed, lowercased.

    NFKC folds compatibility look-alikes (fullwidth letters, ligatures, a no-break space) into
    their plain spelling, so fullwidth `web` (U+FF57 U+FF45 U+FF42) and `Web` are one name.
    """
    return unicodedata.normalize("NFKC", name).strip().lower()


def check_branch(branch: str, what: str = "branch") -> str:
    """A branch name as git accepts it (`git check-ref-format --branch`), trimmed.

    Refused: empty, over MAX_BRANCH_LENGTH, unprintable characters, a leading `-` (it reads as
    an option), `HEAD`, `@`, and whatever git's ref-name rules refuse (`..`, spaces, `~^:?*[\\`,
    a trailing `/` or `.lock`, `@{`, ...).
    """
    branch = branch.strip()
    if not branch:
        raise InvalidInput(f"{what} must not be empty")
    check_text(branch, what, max_length=MAX_BRANCH_LENGTH)
    if branch.startswith("-") or branch == "HEAD" or not is_ref_name(branch):
        raise InvalidInput(f"{what} is not a valid git branch name")
    return branch


def is_ref_name(name: str) -> bool:
    """Whether git accepts `name` under `refs/`: no control characters, space or `~^:?*[\\`; no
    `..`, `@{` or `//`; no component starting with `.` or ending with `.lock`; not `@`, and no
    leading or trailing `/` or trailing `.`."""
    if not name or name == "@" or name.startswith("/") or name.endswith(("/", ".")):
        return False
    if any(ord(c) < 0x20 or c in _REF_FORBIDDEN for c in name):
        return False
    if any(sequence in name for sequence in _REF_SEQUENCES):
        return False
    return not any(part.startswith(".") or part.endswith(".lock") for part in name.split("/"))


def check_branches(branches: list[str] | None, what: str) -> list[str] | None:
    """A list of branch names (None stays None), each checked, duplicates dropped."""
    if branches is None:
        return None
    if len(branches) > MAX_LIST_ENTRIES:
        raise InvalidInput(f"{what} may name at most {MAX_LIST_ENTRIES} branches")
    return list(dict.fromkeys(check_branch(b, f"{what} entry") for b in branches))


def check_texts(values: list[str] | None, what: str, *, max_length: int) -> list[str] | None:
    """A list of short printable strings (None stays None), trimmed, duplicates dropped."""
    if values is None:
        return None
    if len(values) > MAX_LIST_ENTRIES:
        raise InvalidInput(f"{what} may have at most {MAX_LIST_ENTRIES} entries")
    cleaned = [check_text(v.strip(), f"{what} entry", max_length=max_length) for v in values]
    if any(not v for v in cleaned):
        raise InvalidInput(f"{what} entries must not be empty")
    return list(dict.fromkeys(cleaned))


def check_secret(secret: str, what: str, *, max_length: int = MAX_SECRET_LENGTH) -> str:
    """A secret as given (a token, a password, a PEM key: line breaks allowed), refused when it
    is empty, longer than `max_length`, or holds NUL or a lone surrogate (neither can be
    encrypted as UTF-8 nor sent)."""
    if not secret:
        raise InvalidInput(f"{what} must not be empty")
    if len(secret) > max_length:
        raise InvalidInput(f"{what} must be at most {max_length} characters")
    if any(c == "\x00" or unicodedata.category(c) == "Cs" for c in secret):
        raise InvalidInput(f"{what} holds a NUL or an unpaired surrogate")
    return secret


def check_id(identifier: str, what: str) -> str:
    """A record id as Ferry makes them (`app_3f9c2a1b7d4e5f60`): ASCII letters, digits, `_` and
    `-`, at most 64 characters. Anything else names no record (InvalidInput)."""
    if not _ID.match(identifier):
        raise InvalidInput(f"{what} is not an id (letters, digits, _ and -, at most 64)")
    return identifier


def check_url(url: str, what: str = "url") -> str:
    """A URL (or local path) trimmed, not empty, at most MAX_URL_LENGTH, printable."""
    url = url.strip()
    if not url:
        raise InvalidInput(f"{what} must not be empty")
    return check_text(url, what, max_length=MAX_URL_LENGTH)


def url_credentials(url: str) -> tuple[str | None, str | None]:
    """The user name and password a URL carries in its user-info (`scheme://user:pass@host`),
    each None when absent. An scp-like SSH address (`git@host:path`) carries only a user name."""
    if "://" not in url:
        scp = _SCP_LIKE.match(url)
        return (scp.group("user") if scp else None), None
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return None, None
    userinfo = parts.netloc.rpartition("@")[0]
    username, colon, password = userinfo.partition(":")
    return username or None, (password if colon else None)


def without_credentials(url: str) -> str:
    """`url` with any user-info removed (`https://u:p@host/x` → `https://host/x`); SSH keeps its
    user name, which is the login, not a secret (`ssh://git:p@host/x` → `ssh://git@host/x`)."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    if parts.scheme.lower() == "ssh":
        username = userinfo.partition(":")[0]
        host = f"{username}@{host}" if username else host
    return parts._replace(netloc=host).geturl()


def carries_credentials(url: str) -> bool:
    """Whether a repository URL carries a secret: a password anywhere, or user-info in an HTTP(S)
    URL (`https://TOKEN@host/...` is how tokens are often pasted). Not secrets: an SSH login name
    (`git@host:path`, `ssh://git@host/path`), and the organization Azure DevOps puts in its clone
    URLs (`https://org@dev.azure.com/org/...`)."""
    username, password = url_credentials(url)
    if password is not None:
        return True
    if username is None or "://" not in url:
        return False
    parts = urlsplit(url)
    if parts.scheme.lower() == "ssh":
        return False
    organization = parts.path.strip("/").split("/", 1)[0]
    azure = (parts.hostname or "").lower() == "dev.azure.com" and username == organization
    return not azure


def check_no_url_credentials(url: str) -> None:
    """InvalidInput when a repository URL carries a secret (`carries_credentials`)."""
    if carries_credentials(url):
        raise InvalidInput(
            "the URL carries credentials: remove them from the URL and send them as `auth` "
            '({"kind": "token" | "basic", "username": ..., "secret": ...}; CLI: --auth), '
            "where they are stored encrypted and never shown again"
        )
