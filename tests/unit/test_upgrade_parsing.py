"""`/rollback upgrade` and `/rollback clear` parsed, or refused with what was wrong."""

from __future__ import annotations

import pytest

from handlers.parsing import CommandKind, ParseError, parse


def test_upgrade_takes_a_target_a_version_and_an_optional_reason() -> None:
    plain = parse("upgrade engine 2.4.0")
    assert (plain.kind, plain.target, plain.version, plain.reason) == (CommandKind.UPGRADE, "engine", "2.4.0", "")
    told = parse("upgrade engine 2.4.0 release of the new index")
    assert told.reason == "release of the new index"


def test_clear_needs_a_reason() -> None:
    cleared = parse("clear engine 2.4.0 index migration fixed in 2.4.1")
    assert (cleared.kind, cleared.target, cleared.version) == (CommandKind.CLEAR, "engine", "2.4.0")
    assert cleared.reason == "index migration fixed in 2.4.1"
    with pytest.raises(ParseError, match="a clear needs a reason"):
        parse("clear engine 2.4.0")


@pytest.mark.parametrize("text", ["upgrade", "upgrade engine", "clear engine"])
def test_a_target_and_a_version_are_required(text: str) -> None:
    with pytest.raises(ParseError, match="needs a target and a version"):
        parse(text)


@pytest.mark.parametrize("head", ["upgrade", "clear"])
def test_the_version_must_be_a_docker_tag(head: str) -> None:
    with pytest.raises(ParseError, match="not a Docker tag"):
        parse(f"{head} engine 2.4.0;rm why")
