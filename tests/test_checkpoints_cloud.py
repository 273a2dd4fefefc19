"""Notebook 06's checkpoints pass on right answers and fail with their one sentence on wrong or missing ones.
The prediction is checked against a real back-end with an API key; the VM's grade against a real back-end too."""

from __future__ import annotations

from pathlib import Path

import pytest

from workshop.checkpoints import CheckpointFailed
from workshop.checkpoints import cloud as check
from workshop.deploy import notebook_cells
from workshop.deploy.gcp import generate_api_key
from workshop.notebook_track import strip_solutions
from workshop.services import start_backend


@pytest.fixture(autouse=True)
def english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_LANG", "en")


def failure(call, *args: object) -> str:
    with pytest.raises(CheckpointFailed) as caught:
        call(*args)
    return str(caught.value)


# ------------------------------------------------------------------ going further: the start-up script
def test_startup_script_passes_on_the_pull_line_and_the_image_key(capsys: pytest.CaptureFixture[str]) -> None:
    check.startup_script('until docker pull "$IMAGE"; do', "image")
    assert capsys.readouterr().out.startswith("✅ Right: the VM pulls the image itself")
    check.startup_script('   until docker pull "$IMAGE"; do  ', " image ")  # spaces around a copied line


@pytest.mark.parametrize(("line", "key", "sentence"), [
    (None, "image", "Set pull_line to the line of the start-up script"),
    ("docker pull backend", "image", "pull_line is not a line of workshop/deploy/startup.sh"),
    ("set -euo pipefail", "image", "That line does not download the image"),
    ('until docker pull "$IMAGE"; do', "api-key", "metadata_key is not it"),
    ('until docker pull "$IMAGE"; do', None, "metadata_key is not it"),
])
def test_startup_script_fails_with_its_sentence(line: object, key: object, sentence: str) -> None:
    assert failure(check.startup_script, line, key).startswith(sentence)


def test_startup_script_speaks_french_in_a_french_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_LANG", "fr")
    assert failure(check.startup_script, "set -euo pipefail", "image").startswith("Cette ligne ne télécharge pas")


# ------------------------------------------------------------------ exercise 1: the firewall rule
def exercise_text(language: str = "en", solved: bool = True) -> str:
    """my_firewall_rule as the notebook's cell sets it: the solution's, or the student version's."""
    source = notebook_cells.cell("firewall-exercise").source
    namespace: dict = {}
    exec(source if solved else strip_solutions(source, language), namespace)
    return namespace["my_firewall_rule"]


def test_firewall_command_passes_on_the_solution_and_on_other_ways_to_write_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    solved = exercise_text()
    check.firewall_command(solved)
    assert capsys.readouterr().out.startswith("✅ Your rule matches the plan's")
    for flag in ('--source-ranges="$SOURCE_RANGE"', "--source-ranges 203.0.113.7/32", "--source-ranges=203.0.113.7/32"):
        check.firewall_command(solved.replace("--source-ranges=${SOURCE_RANGE}", flag))


@pytest.mark.parametrize(("flag", "sentence"), [
    (None, "Your command has no --source-ranges flag"),
    ("--source-ranges=0.0.0.0/0", "0.0.0.0/0 opens port 8000 to the whole internet"),
    ("--source-ranges=203.0.113.0/24", "--source-ranges=203.0.113.0/24 is not one address"),
    ('--source-ranges="${SOURCE_RANGE}', "The shell cannot read your command"),
])
def test_firewall_command_fails_with_its_sentence(flag: str | None, sentence: str) -> None:
    text = exercise_text(solved=False) if flag is None else exercise_text().replace("--source-ranges=${SOURCE_RANGE}",
                                                                                    flag)
    assert failure(check.firewall_command, text).startswith(sentence)


def test_firewall_command_fails_when_a_given_line_was_changed() -> None:
    changed = exercise_text().replace("--rules=tcp:${PORT}", "--rules=tcp:22")
    assert failure(check.firewall_command, changed).startswith("The given lines changed (the plan has --rules=tcp:")
    assert failure(check.firewall_command, None).startswith("my_firewall_rule is empty")


def test_the_student_version_of_the_exercise_fails_in_french(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_LANG", "fr")
    sentence = failure(check.firewall_command, exercise_text("fr", solved=False))
    assert sentence.startswith("Votre commande n'a pas d'option --source-ranges")


# ------------------------------------------------------------------ exercise 2: the status without the key
def test_status_without_key_reveals_401_seen_on_a_real_back_end(capsys: pytest.CaptureFixture[str]) -> None:
    check.status_without_key(401)
    out = capsys.readouterr().out
    assert "$ curl -s -w" in out and "/models" in out and "HTTP 401" in out
    assert out.rstrip().endswith("✅ You predicted 401, the back-end answered 401: right, without the key the API "
                                 "refuses, and /health stays open, so anyone may see that the VM is up.")


def test_status_without_key_passes_on_any_recorded_guess_and_compares_it(capsys: pytest.CaptureFixture[str]) -> None:
    """A prediction exercise: the guess is recorded, then compared with the measurement; no guessing until green."""
    check.status_without_key(200)
    out = capsys.readouterr().out.rstrip()
    assert "HTTP 401" in out
    assert out.endswith("✅ You predicted 200, the back-end answered 401: without the key the API refuses (401 means "
                        "'who are you?', the body above says so), and /health stays open.")


@pytest.mark.parametrize("prediction", [None, "401", 401.0, True, 42])
def test_status_without_key_wants_a_status_code(prediction: object) -> None:
    assert failure(check.status_without_key, prediction).startswith("Set status_without_key to a number")


# ------------------------------------------------------------------ after the deployment: the VM
def write_state(folder: Path, **values: str) -> None:
    state = folder / notebook_cells.STATE_FILE
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text("".join(f"{name}={value}\n" for name, value in values.items()))


def test_vm_passes_checks_nothing_while_nothing_was_deployed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    check.vm_passes(False)
    check.what_is_left(False)
    assert capsys.readouterr().out == "⚠️ Not verified: nothing was deployed (RUN_IN_CLOUD is False).\n" * 2
    assert failure(check.vm_passes, True).startswith("The VM's address is not known yet")
    assert failure(check.what_is_left, True).startswith("Your names are not known yet")
    monkeypatch.setenv("WORKSHOP_LANG", "fr")
    check.vm_passes(False)
    assert capsys.readouterr().out == "⚠️ Non vérifié : rien n'a été déployé (RUN_IN_CLOUD vaut False).\n"


def test_vm_passes_grades_the_address_and_key_the_cells_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = generate_api_key()
    monkeypatch.chdir(tmp_path)
    with start_backend(env={"WORKSHOP_API_KEY": key}, log_dir=tmp_path / "logs") as server:  # as on the VM
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        write_state(tmp_path, EXTERNAL_IP=host, PORT=port, API_KEY=key)
        check.vm_passes(True)
        out = capsys.readouterr().out
        assert out.startswith(f"$ workshop check http://{host}:{port} --api-key ${{API_KEY}}\n")
        assert "✅ Your VM passes" in out
        write_state(tmp_path, EXTERNAL_IP=host, PORT=port, API_KEY="not-the-key")
        assert failure(check.vm_passes, True).startswith("Your VM fails")
