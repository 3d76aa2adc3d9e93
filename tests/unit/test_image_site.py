"""Where the tag is edited: the file that decides the image, or the `.env` line of its `${TAG}`;
what cannot be edited safely is refused before a run, with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.adapters.compose_file import ImageSite, check_tag_edit, image_in, image_site, set_tag
from bot.errors import ComposeFileError
from bot.ports import ServiceConfig

REPO = "reg:5000/engine"
BASE = f"# base\nservices:\n  engine:\n    image: {REPO}:2.4.0   # live\n    environment:\n      A: '1'\n"
OVERRIDE = "# this host\nservices:\n  engine:\n    ports: ['127.0.0.1:8080:8080']\n"


def project(
    tmp_path: Path,
    base: str = BASE,
    override: str | None = OVERRIDE,
    env: str | None = None,
    image: str = f"{REPO}:2.4.0",
) -> ServiceConfig:
    """Compose's answer for these files (the merged image is given: Compose works it out)."""
    (tmp_path / "docker-compose.yml").write_text(base)
    files = [tmp_path / "docker-compose.yml"]
    if override is not None:
        (tmp_path / "docker-compose.override.yml").write_text(override)
        files.append(tmp_path / "docker-compose.override.yml")
    if env is not None:
        (tmp_path / ".env").write_bytes(env.encode())
    return ServiceConfig("p", tmp_path, tuple(files), image, "hash")


def test_base_decides_when_the_override_does_not_set_the_image(tmp_path: Path) -> None:
    config = project(tmp_path)
    assert image_site(config, "engine") == ImageSite(tmp_path / "docker-compose.yml")


def test_the_last_file_that_sets_the_image_decides_and_only_its_tag_changes(tmp_path: Path) -> None:
    override = OVERRIDE + f'    image: "{REPO}:2.4.0"  # pinned here\n'
    config = project(tmp_path, override=override)
    site = image_site(config, "engine")
    assert site == ImageSite(tmp_path / "docker-compose.override.yml")
    edit = set_tag(site, "engine", "2.3.1")
    assert (tmp_path / "docker-compose.override.yml").read_text() == override.replace("2.4.0", "2.3.1")
    assert (tmp_path / "docker-compose.yml").read_text() == BASE
    assert (edit.old_image, edit.new_image) == (f"{REPO}:2.4.0", f"{REPO}:2.3.1")


def test_a_tag_from_env_is_edited_on_its_env_line_and_nowhere_else(tmp_path: Path) -> None:
    env = "# owners' settings\r\nCOMPOSE_PROJECT_NAME=owners\r\nENGINE_TAG=2.4.0   # live\r\nOTHER=2.4.0\r\n"
    config = project(tmp_path, base=BASE.replace(":2.4.0", ":${ENGINE_TAG}"), env=env)
    site = image_site(config, "engine")
    assert site == ImageSite(tmp_path / ".env", "ENGINE_TAG")
    before = check_tag_edit(site, "engine", "2.3.1")
    assert (tmp_path / ".env").read_bytes() == env.encode(), "checking writes nothing"
    edit = set_tag(site, "engine", "2.3.1")
    assert (tmp_path / ".env").read_bytes() == env.replace("ENGINE_TAG=2.4.0", "ENGINE_TAG=2.3.1").encode()
    assert (
        (edit.old_image, edit.new_image)
        == ("ENGINE_TAG=2.4.0", "ENGINE_TAG=2.3.1")
        == (before.old_image, before.new_image)
    )
    assert image_in(site, env, "engine") == "ENGINE_TAG=2.4.0"
    assert (tmp_path / "docker-compose.yml").read_text() == BASE.replace(":2.4.0", ":${ENGINE_TAG}")


@pytest.mark.parametrize(
    ("image", "env", "reason"),
    [
        ("${REGISTRY}/engine:2.4.0", "REGISTRY=reg:5000\n", "beyond its tag"),
        (f"{REPO}:${{ENGINE_TAG}}", "OTHER=1\n", "ENGINE_TAG (the image's tag) is not set"),
        (f"{REPO}:${{ENGINE_TAG}}", "ENGINE_TAG=2.4.0\nENGINE_TAG=2.4.0\n", "is set on 2 lines"),
        (f"{REPO}:${{ENGINE_TAG}}", "ENGINE_TAG=$(cat tag)\n", "not a plain tag value"),
        (f"{REPO}:${{ENGINE_TAG}}", "ENGINE_TAG=2.2.0\n", "rollbot cannot tell where the tag is set"),
    ],
)
def test_interpolation_rollbot_cannot_edit_safely_is_refused_with_the_reason(
    tmp_path: Path, image: str, env: str, reason: str
) -> None:
    config = project(tmp_path, base=BASE.replace(f"{REPO}:2.4.0", image), env=env)
    with pytest.raises(ComposeFileError, match="by hand") as refused:
        image_site(config, "engine")
    assert reason in str(refused.value)


def test_a_tag_variable_from_rollbots_own_environment_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGINE_TAG", "2.4.0")
    config = project(tmp_path, base=BASE.replace(":2.4.0", ":${ENGINE_TAG}"), env="ENGINE_TAG=2.4.0\n")
    with pytest.raises(ComposeFileError, match="rollbot's own environment"):
        image_site(config, "engine")


def test_an_image_from_a_merge_key_is_refused(tmp_path: Path) -> None:
    base = f"x-engine: &engine\n  image: {REPO}:2.4.0\nservices:\n  engine:\n    <<: *engine\n    restart: always\n"
    with pytest.raises(ComposeFileError, match="merge key"):
        image_site(project(tmp_path, base=base), "engine")


def test_an_anchored_image_shared_with_another_service_fails_the_check_not_the_run(tmp_path: Path) -> None:
    base = f"services:\n  engine:\n    image: &img {REPO}:2.4.0\n  worker:\n    image: *img\n"
    config = project(tmp_path, base=base)
    site = image_site(config, "engine")
    with pytest.raises(ComposeFileError, match="anchor"):
        check_tag_edit(site, "engine", "2.3.1")
    assert (tmp_path / "docker-compose.yml").read_text() == base


def test_an_image_compose_sees_differently_from_the_file_is_refused(tmp_path: Path) -> None:
    config = project(tmp_path, image=f"{REPO}:9.9.9")
    with pytest.raises(ComposeFileError, match="Compose runs"):
        image_site(config, "engine")
