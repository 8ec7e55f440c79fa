"""The CLI never hands API text to the terminal as codes (ferry/cli/output.py)."""

from __future__ import annotations

import io

from rich.console import Console

from ferry.cli.output import cell, printable, table


def test_printable_escapes_terminal_codes_and_keeps_text() -> None:
    assert printable("app\x1b[31mred") == "app\\x1b[31mred"
    assert printable("evil\u202eexe") == "evil\\u202eexe"
    assert printable("two\nlines\x00") == "two\\nlines\\x00"
    assert printable("lone \udcff") == "lone \\udcff"
    assert (
        printable("Billing Service \uff57\uff45\uff42 café")
        == "Billing Service \uff57\uff45\uff42 café"
    )


def test_table_with_hostile_name_writes_no_escape_sequence() -> None:
    shown = table("NAME", "ERROR")
    shown.add_row(cell("app\x1b[31mred"), cell("[bold]not markup[/bold]\u202e"))
    out = io.StringIO()
    Console(file=out, width=120, force_terminal=False, color_system=None).print(shown)

    rendered = out.getvalue()
    assert "\x1b" not in rendered and "\u202e" not in rendered
    assert "app\\x1b[31mred" in rendered
    assert "[bold]not markup[/bold]\\u202e" in rendered
