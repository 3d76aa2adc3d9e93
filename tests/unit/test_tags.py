"""A version typed in chat becomes a process argument and a YAML value: only Docker tags pass."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.tags import TAG_PATTERN, ImageRef, describe_invalid_tag, is_valid_tag

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize("version", ["2.3.1", "v2", "a" * 128, "_x", "2.3.1-rc.1", "latest", "0"])
def test_docker_tags_are_accepted(version: str) -> None:
    """Everything Docker's tag grammar allows must be usable as a version."""
    assert is_valid_tag(version)


@pytest.mark.parametrize(
    "version",
    [
        "",
        ".x",
        "-x",
        "2.3.1;rm -rf /",
        "../x",
        "a" * 129,
        "2.3.1\n",
        "\n2.3.1",
        "a b",
        "2.3.1 ",
        "x/y",
        "x:y",
        "x@y",
        "$(reboot)",
        "`id`",
        "é",
        "２",  # fullwidth digit: \d would take it, Docker would not
        "1٣",  # Arabic-Indic digit
        "v2\u200b",  # zero-width space
    ],
)
def test_everything_else_is_refused(version: str) -> None:
    """Shell metacharacters, paths, whitespace, newlines and non-ASCII never become a tag."""
    assert not is_valid_tag(version)


ALLOWED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def _docker_would_accept(version: str) -> bool:
    """The grammar of DESIGN.md written out without a regex, as an independent oracle."""
    return 1 <= len(version) <= 128 and set(version) <= ALLOWED and version[0] not in ".-"


@given(
    st.text(max_size=140) | st.from_regex(TAG_PATTERN, fullmatch=True) | st.text(alphabet="a.-_;/ \n9", max_size=130)
)
def test_is_valid_tag_agrees_with_the_grammar(version: str) -> None:
    """Random input, near-tags and real tags: accepted exactly when Docker's grammar says so."""
    assert is_valid_tag(version) == _docker_would_accept(version)


@pytest.mark.parametrize(
    "reference, repository, tag, digest",
    [
        ("registry:5000/a/b:1.0", "registry:5000/a/b", "1.0", None),
        ("127.0.0.1:5000/rollbot-demo/engine:2.4.0", "127.0.0.1:5000/rollbot-demo/engine", "2.4.0", None),
        ("engine", "engine", None, None),
        ("registry:5000/engine", "registry:5000/engine", None, None),
        (f"x@{DIGEST}", "x", None, DIGEST),
        (f"reg:5000/x:2.4.0@{DIGEST}", "reg:5000/x", "2.4.0", DIGEST),
    ],
)
def test_parse_splits_and_round_trips(reference: str, repository: str, tag: str | None, digest: str | None) -> None:
    """A registry port is not a tag, and str() gives back exactly what the compose file said."""
    ref = ImageRef.parse(reference)
    assert (ref.repository, ref.tag, ref.digest) == (repository, tag, digest)
    assert str(ref) == reference


def test_with_tag_replaces_the_tag_and_keeps_the_repository() -> None:
    """Switching versions keeps registry host and port; only the tag changes."""
    assert str(ImageRef.parse("registry:5000/a/b:1.0").with_tag("0.9")) == "registry:5000/a/b:0.9"
    assert str(ImageRef.parse("engine").with_tag("2.3.1")) == "engine:2.3.1"


def test_with_tag_drops_a_digest() -> None:
    """A digest pins the old image and would override the tag we were asked to run."""
    switched = ImageRef.parse(f"reg:5000/x:2.4.0@{DIGEST}").with_tag("2.3.1")
    assert switched == ImageRef("reg:5000/x", "2.3.1", None)
    assert str(switched) == "reg:5000/x:2.3.1"
    assert str(ImageRef.parse(f"x@{DIGEST}").with_tag("1")) == "x:1"


@pytest.mark.parametrize("version", ["", ".x", "2.3.1;rm -rf /", "a" * 129, "2.3.1\nrm -rf /", "x" * 5000, "é"])
def test_describe_invalid_tag_is_one_short_line(version: str) -> None:
    """The refusal is shown in Slack and on a terminal: one line, never the whole input."""
    reason = describe_invalid_tag(version)
    assert "\n" not in reason
    assert len(reason) < 200
    assert not is_valid_tag(version)


def test_describe_invalid_tag_clips_long_input_and_says_why() -> None:
    """A 5000-character paste is shown as its first characters and its length."""
    reason = describe_invalid_tag("9" * 5000)
    assert "9" * 37 + "..." in reason
    assert "9" * 41 not in reason
    assert "5000 characters" in reason and "128" in reason


def test_describe_invalid_tag_explains_empty_and_illegal_input() -> None:
    """Each kind of mistake gets a reason that tells the person what a tag looks like."""
    assert "empty" in describe_invalid_tag("")
    semicolon = describe_invalid_tag("2.3.1;rm -rf /")
    assert "'2.3.1;rm -rf /'" in semicolon and "not a Docker tag" in semicolon
