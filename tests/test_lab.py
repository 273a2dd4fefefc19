"""The notebooks' first lines: the working directory and the model, said in the notebook's language."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support import REPO_ROOT
from workshop import lab
from workshop.checkpoints import LANGUAGE_VARIABLE
from workshop.settings import BUNDLED_MODEL


@pytest.fixture
def notebook_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Start in a notebook folder of the given language; the working directory, PATH and language come back."""
    monkeypatch.setenv(LANGUAGE_VARIABLE, "")  # so that the undo removes what go_to_project_root sets
    monkeypatch.delenv(LANGUAGE_VARIABLE)
    monkeypatch.setenv("PATH", os.environ.get("PATH", ""))

    def enter(language: str) -> None:
        folder = tmp_path / language
        folder.mkdir()
        monkeypatch.chdir(folder)

    return enter


@pytest.mark.parametrize(("language", "expected"), [
    ("en", f"Working directory: the project's root, {REPO_ROOT.name}/"),
    ("fr", f"Répertoire de travail : la racine du projet, {REPO_ROOT.name}/"),
])
def test_go_to_project_root_moves_there_and_says_so_in_the_notebooks_language(
    notebook_folder, capsys: pytest.CaptureFixture[str], language: str, expected: str,
) -> None:
    notebook_folder(language)
    assert lab.go_to_project_root() == REPO_ROOT
    assert Path.cwd() == REPO_ROOT
    assert capsys.readouterr().out.strip() == expected
    assert os.environ[LANGUAGE_VARIABLE] == language  # kept for the checkpoints, now that the folder changed


class OfflineRegistry:
    default_name = BUNDLED_MODEL


@pytest.mark.parametrize(("language", "online", "expected"), [
    ("en", False, "Using the bundled model 'shapes' (offline): it finds circles, squares and triangles."),
    ("fr", False, "Modèle embarqué 'shapes' (hors ligne) : il trouve des cercles, des carrés et des triangles."),
    ("fr", True, "Modèle embarqué 'shapes' (en ligne, mais les poids publics ne sont pas en cache) : il trouve des "
                 "cercles, des carrés et des triangles."),
])
def test_choose_model_says_which_model_and_why(
    notebook_folder, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, language: str,
    online: bool, expected: str,
) -> None:
    notebook_folder(language)
    monkeypatch.setattr(lab, "network_available", lambda: online)
    assert lab.choose_model(OfflineRegistry()) == BUNDLED_MODEL
    assert capsys.readouterr().out.strip() == expected
