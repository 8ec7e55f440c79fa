"""The status page's files keep the rules its Content-Security-Policy and its escaping rely on:
no inline script or style, no HTML built from strings, every module import resolvable."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib import resources

import pytest

STATIC = resources.files("ferry.api").joinpath("static")
SCRIPTS = sorted(f.name for f in STATIC.iterdir() if f.name.endswith(".js"))

# Ways to turn a string into markup or code, or to write a style the policy would refuse.
UNSAFE = re.compile(
    r"\.(?:innerHTML|outerHTML)\s*=|insertAdjacentHTML\s*\(|document\.write|\beval\s*\("
    r"|new\s+Function\s*\(|\.style\s*[.=\[]|setAttribute\(\s*[\"'](?:style|on\w+)[\"']"
    r"|cssText|javascript:"
)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_script = False
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_script = True


def test_static_index_has_no_inline_script_style_or_handlers() -> None:
    page = _Page()
    page.feed(STATIC.joinpath("index.html").read_text())

    assert not page.inline_script
    assert "style" not in [tag for tag, _ in page.tags]
    for tag, attributes in page.tags:
        assert "style" not in attributes, tag
        assert not [name for name in attributes if name.startswith("on")], tag
        for link in (attributes.get("src"), attributes.get("href")):
            # Relative: the page works under an API Gateway stage prefix too.
            assert link is None or not re.match(r"(?:[a-z]+:)?//|/", link), (tag, link)
    scripts = [attributes for tag, attributes in page.tags if tag == "script"]
    assert scripts == [{"type": "module", "src": "ui/app.js"}]


@pytest.mark.parametrize("name", SCRIPTS)
def test_static_script_builds_no_markup_or_inline_style(name: str) -> None:
    source = STATIC.joinpath(name).read_text()
    assert not UNSAFE.findall(source)


@pytest.mark.parametrize("name", SCRIPTS)
def test_static_script_imports_only_shipped_modules(name: str) -> None:
    source = STATIC.joinpath(name).read_text()
    for imported in re.findall(r"""from\s+["']([^"']+)["']""", source):
        assert re.fullmatch(r"\./[a-z-]+\.js", imported), imported
        assert STATIC.joinpath(imported.removeprefix("./")).is_file(), imported


def test_static_token_only_ever_read_from_the_fragment() -> None:
    for name in SCRIPTS:
        source = STATIC.joinpath(name).read_text()
        assert "searchParams" not in source and "?token" not in source, name
    assert "/^#token=([^&]*)/" in STATIC.joinpath("api.js").read_text()
