"""The teacher reaches every deployment: a Cloud Run service lets in only the callers IAM admits, so `workshop check
--roster` and the Teacher page send the teacher's Google identity token (from the REAL `gcloud auth
print-identity-token`) to Cloud Run URLs, and to no other host.

Google's front door cannot exist here: the loopback emulator (tests/gcloud_emulator/) plays it. gcloud refreshes the
teacher's stored login at the emulator's OAuth endpoint and gets an identity token naming the account; the emulator
serves the services' `*.run.app` hosts (over plain HTTP, through its proxy), checks that token against each service's
roles/run.invoker members (granted by `workshop gcp deploy --teacher-account`), then passes the request to a real
back-end on this machine, which plays the container.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from gcloud_emulator import Emulator, GcloudWorld, Project
from workshop.check.identity import authorization, identity_token, is_cloud_run
from workshop.services import BackgroundService, start_backend

PROJECT = "my-workshop-project"
KEY = "cloud-run-key-123"
ADA = "http://workshop-backend-ada-123456789012.europe-west1.run.app"
BOB = "http://workshop-backend-bob-123456789012.europe-west1.run.app"
APP_PATH = Path(__file__).resolve().parents[1] / "workshop" / "frontend" / "app.py"


def test_the_identity_token_goes_to_cloud_run_urls_only() -> None:
    assert is_cloud_run("https://svc-123.europe-west1.run.app/") and is_cloud_run("svc-1.europe-west1.run.app")
    assert not is_cloud_run("http://34.76.1.2:8000") and not is_cloud_run("http://run.app.example.com")
    assert authorization("https://svc-1.europe-west1.run.app", "TOKEN") == {"Authorization": "Bearer TOKEN"}
    assert authorization("http://34.76.1.2:8000", "TOKEN") == {}  # a VM, a classmate: never the teacher's identity
    assert authorization("https://svc-1.europe-west1.run.app", None) == {}


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundService]:
    """The services' container: a real back-end with the key Cloud Run passes it (WORKSHOP_API_KEY)."""
    server = start_backend(env={"WORKSHOP_API_KEY": KEY}, log_dir=tmp_path_factory.mktemp("logs"))
    yield server
    server.stop()


@pytest.fixture
def classroom(tmp_path: Path, container: BackgroundService) -> Iterator[tuple[Emulator, GcloudWorld]]:
    """Two students' Cloud Run services; ada let the teacher in (roles/run.invoker), bob did not."""
    with Emulator(Project(caller="teacher@example.com")) as emulator:
        cloud = emulator.cloud
        for student in ("ada", "bob"):
            name = f"workshop-backend-{student}"
            cloud.seed_run_service(PROJECT, "europe-west1", name, "image@sha256:0")
            cloud.run_backends[f"https://{name}-123456789012.europe-west1.run.app"] = container.url
        cloud.run_policies[f"{PROJECT}/europe-west1/workshop-backend-ada"].bindings["roles/run.invoker"] = [
            "user:teacher@example.com"]
        world = GcloudWorld(tmp_path / "world", emulator, account="teacher@example.com", identity=True)
        # Requests to the *.run.app hosts go through the emulator's proxy, as they would go to Google's front door.
        world.env.update({"HTTP_PROXY": emulator.url, "http_proxy": emulator.url})
        yield emulator, world


@pytest.mark.slow
def test_real_gcloud_prints_the_teachers_identity_token(classroom: tuple[Emulator, GcloudWorld],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    emulator, world = classroom
    world.patched(monkeypatch)
    token = identity_token()
    from gcloud_emulator.cloud import token_email

    assert token is not None and token_email(token) == "teacher@example.com"


@pytest.mark.slow
def test_workshop_check_roster_sends_the_token_and_says_who_has_not_let_the_teacher_in(
    tmp_path: Path, classroom: tuple[Emulator, GcloudWorld]
) -> None:
    emulator, world = classroom
    roster = tmp_path / "class.csv"
    roster.write_text(f"name,url,key\nada,{ADA},{KEY}\nbob,{BOB},{KEY}\n")
    result = world.workshop("check", "--roster", str(roster), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr  # bob's service refuses the teacher
    assert "sending the identity token of gcloud's account" in result.stderr
    rows = {line.split(",")[0]: line for line in (tmp_path / "class-results.csv").read_text().splitlines()[1:]}
    assert ",yes,yes,8/8," in rows["ada"]
    assert "Cloud Run refused the caller" in rows["bob"] and "--teacher-account" in rows["bob"]
    served = [request for request in emulator.log if request.host.endswith(".run.app")]
    assert served == []  # the front door's requests are not API calls: they never reach the API log
    assert not emulator.proxy.refused


@pytest.mark.slow
def test_the_teacher_page_grades_cloud_run_services_with_the_teachers_identity(
    classroom: tuple[Emulator, GcloudWorld], monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator, world = classroom
    world.patched(monkeypatch)
    for variable in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(variable, world.env[variable])
    app = AppTest.from_file(str(APP_PATH), default_timeout=180)
    app.run()
    app = app.switch_page("views/teacher.py").run()
    app = app.text_area(key="roster_text").set_value(f"name,url,key\nada,{ADA},{KEY}\nbob,{BOB},{KEY}").run()
    assert not app.exception
    assert [warning.value for warning in app.warning] == ["**1 of 2** deployments pass every check " +
                                                          app.warning[0].value.split("every check ", 1)[1]]
    table = app.table[0].value.to_dict("records")
    ada, bob = table
    assert ada["pass"] == "✓" and ada["contract"] == "8/8"
    assert bob["pass"] == "✗" and "Cloud Run refused the caller" in bob["fix"].replace("\\", "")
    assert os.environ["CLOUDSDK_AUTH_TOKEN_HOST"].startswith("http://oauth2.googleapis.com")
