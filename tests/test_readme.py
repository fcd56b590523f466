"""The README's quick start and check list stay true to the project."""

from __future__ import annotations

import re
from pathlib import Path

from hipaacheck.registry import load_registry

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_quick_start_is_two_commands_that_make_provides():
    block = README.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.MULTILINE) and re.search(r"^test:", makefile, re.MULTILINE)


def test_every_installed_check_is_documented():
    documented = set(re.findall(r"^\| `([a-z0-9_.]+)` \|", README, re.MULTILINE))
    assert set(load_registry().checks) <= documented
