"""Notebook 07's checkpoints: each passes on a right answer and fails with its one sentence on a wrong one.

The replicas are real containers on the real Docker engine, labelled as Compose labels a project's
``backend`` replicas (small ``sleep`` containers of the base image: what the checkpoints read is the
labels and the ids, not the back-end). The load-test figures come from a real ``workshop loadtest``
against a real ``workshop serve``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import DOCKER_BASE_IMAGE
from workshop.checkpoints import CheckpointFailed
from workshop.checkpoints import scaling as check
from workshop.loadtest import run_loadtest
from workshop.services import BackgroundService, free_port

# The exercise's figures: 2 vCPU and 2 GiB per instance, 4 hours, a $5 budget -> $0.7632 per instance, 6 fit.
PRICES = {"budget": 5.0, "hours": 4, "cpu": 2, "memory_gib": 2, "cpu_price": 0.000024, "memory_price": 0.0000025}


@pytest.fixture(autouse=True)
def english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_LANG", "en")


def test_the_largest_cap_within_the_budget_passes(capsys: pytest.CaptureFixture[str]) -> None:
    check.max_instances(6, **PRICES)
    assert capsys.readouterr().out == "✅ --max-instances=6: at most $4.58 for 4 h, within the budget of $5.00.\n"
    check.max_instances(6.0, **PRICES)  # a whole float is a whole number


@pytest.mark.parametrize(
    ("answer", "sentence"),
    [
        (None, "Set max_instances to a whole number"),
        (..., "Set max_instances to a whole number"),
        (6.55, "Set max_instances to a whole number"),
        ("6", "Set max_instances to a whole number"),
        (True, "Set max_instances to a whole number"),
        (0, "A cap below 1 serves nobody"),
        (7, "7 instances busy for 4 h cost $5.34, over the budget of $5.00: lower the cap (round down"),
        (3, "3 instances cost at most $2.29 for 4 h: the budget of $5.00 pays for more, raise the cap."),
    ],
)
def test_a_cap_over_or_under_the_budget_fails_with_its_sentence(answer: object, sentence: str) -> None:
    with pytest.raises(CheckpointFailed) as failure:
        check.max_instances(answer, **PRICES)
    assert str(failure.value).startswith(sentence)


def test_a_cap_the_cloud_run_plan_refuses_fails_with_its_sentence() -> None:
    # 150 instances fit a large budget, but DeployConfig (and Cloud Run) stop at 100.
    with pytest.raises(CheckpointFailed) as failure:
        check.max_instances(150, **{**PRICES, "budget": 150 * 0.7632 + 0.1})
    assert str(failure.value).startswith("The Cloud Run plan does not take --max-instances=150 (ValueError:")


def test_sentences_come_in_french(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_LANG", "fr")
    with pytest.raises(CheckpointFailed) as failure:
        check.max_instances(7, **PRICES)
    assert str(failure.value).startswith("7 instances occupées pendant 4 h coûtent 5.34 $, plus que le budget")


def test_served_by_counts_reads_single_lines_and_uniq_counts() -> None:
    output = "      4 x-served-by: aaa\n3 X-Served-By: bbb\nX-Served-By: aaa\r\nHTTP/1.1 200 OK\n"
    assert check.served_by_counts(output) == {"aaa": 5, "bbb": 3}


# ------------------------------------------------------------------------------ with real containers


def start_replicas(project: str, count: int) -> list[str]:
    """``count`` running containers labelled as the ``backend`` replicas of Compose project ``project``."""
    ids = []
    for _ in range(count):
        ids.append(subprocess.run(
            ["docker", "run", "-d", "--rm", "--label", f"com.docker.compose.project={project}",
             "--label", "com.docker.compose.service=backend", DOCKER_BASE_IMAGE, "sleep", "600"],
            check=True, capture_output=True, text=True, timeout=120,
        ).stdout.strip()[:12])
    return ids


@pytest.fixture
def replicas(docker_engine: None) -> Iterator[tuple[str, list[str]]]:
    """A project name and its three replica containers' ids; removed at the end."""
    project = f"workshop-checkpoints-{os.getpid()}"
    ids = start_replicas(project, 3)
    try:
        yield project, ids
    finally:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, timeout=120)
    assert check.running_replicas(project) == []


@pytest.mark.docker
def test_a_loop_that_met_every_replica_passes(replicas: tuple[str, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    project, ids = replicas
    assert sorted(check.running_replicas(project)) == sorted(ids)
    output = "".join(f"      4 x-served-by: {name}\n" for name in sorted(ids))
    check.spread(output, project)
    printed = capsys.readouterr().out
    assert printed.startswith(output.strip())  # the student's own output, then the verdict
    assert "✅ 12 answers from 3 of 3 replicas" in printed


@pytest.mark.docker
@pytest.mark.parametrize(
    ("make_output", "sentence"),
    [
        (lambda ids: "", "Your loop printed nothing"),
        (lambda ids: "HTTP/1.1 200 OK\ncontent-type: application/json\n", "No 'X-Served-By: ...' line"),
        (lambda ids: f"      6 x-served-by: {ids[0]}\n", "All 6 answers came from one replica"),
        (lambda ids: f"x-served-by: {ids[0]}\nx-served-by: {ids[1]}\n", "Only 2 answers: send at least 6"),
        (lambda ids: f"      5 x-served-by: {ids[0]}\n      5 x-served-by: 0123456789ab\n", "0123456789ab is not one"),
    ],
)
def test_a_loop_that_shows_no_spread_fails_with_its_sentence(
    replicas: tuple[str, list[str]], make_output, sentence: str
) -> None:
    project, ids = replicas
    with pytest.raises(CheckpointFailed) as failure:
        check.spread(make_output(ids), project)
    assert str(failure.value).startswith(sentence)


@pytest.fixture(scope="module")
def figures_without_failures(live_server: BackgroundService, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real two-second load test against a real server: requests, no failure."""
    output = tmp_path_factory.mktemp("figures")
    report = run_loadtest(live_server.url, steps=[2], seconds=2, output=output)
    assert report.steps[0].requests > 0 and report.steps[0].failures == 0
    return output


@pytest.mark.docker
@pytest.mark.slow
def test_a_kill_that_failed_nothing_and_a_right_prediction_pass(
    replicas: tuple[str, list[str]], figures_without_failures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, ids = replicas
    subprocess.run(["docker", "kill", ids[0]], check=True, capture_output=True, timeout=60)
    check.replica_killed(0, figures_without_failures, project, replicas=3)
    assert "failed, with 1 of 3 replicas killed: as you predicted." in capsys.readouterr().out


@pytest.mark.docker
@pytest.mark.slow
def test_a_wrong_prediction_or_no_kill_fails_with_its_sentence(
    replicas: tuple[str, list[str]], figures_without_failures: Path, tmp_path: Path
) -> None:
    project, ids = replicas
    with pytest.raises(CheckpointFailed) as failure:
        check.replica_killed(0, figures_without_failures, project, replicas=3)
    assert str(failure.value).startswith("All 3 replicas still run: the docker kill line hit none")
    subprocess.run(["docker", "kill", ids[0]], check=True, capture_output=True, timeout=60)
    for prediction, sentence in [
        (None, "Write your prediction first"),
        (..., "Write your prediction first"),
        (-1, "Write your prediction first"),
        (10, "You predicted 10 failed requests; the run had 0 of"),
    ]:
        with pytest.raises(CheckpointFailed) as failure:
            check.replica_killed(prediction, figures_without_failures, project, replicas=3)
        assert str(failure.value).startswith(sentence), prediction
    with pytest.raises(CheckpointFailed) as failure:
        check.replica_killed(0, tmp_path / "nothing-here", project, replicas=3)
    assert str(failure.value).startswith(f"No figures in {tmp_path / 'nothing-here'}: run the load test cell above")


@pytest.mark.docker
@pytest.mark.slow
def test_failed_requests_during_the_kill_fail_the_checkpoint(replicas: tuple[str, list[str]], tmp_path: Path) -> None:
    project, ids = replicas
    # Nothing listens on that port: every request of this real load test fails.
    run_loadtest(f"http://127.0.0.1:{free_port()}", steps=[1], seconds=1, output=tmp_path)
    subprocess.run(["docker", "kill", ids[0]], check=True, capture_output=True, timeout=60)
    with pytest.raises(CheckpointFailed) as failure:
        check.replica_killed(0, tmp_path, project, replicas=3)
    assert "requests failed while a replica was killed: read the load balancer's log" in str(failure.value)
