"""Notebook 07's checkpoints: each passes on a right answer and fails with its one sentence on a wrong one.

The replicas are the real scaled stack (docker-compose.scale.yml: three back-end replicas behind nginx, built and
started by the real Compose on the real Docker engine, a project of this module's own). The loop is the notebook's
curl loop; the load test is the real ``workshop loadtest`` against the load balancer, and a replica is killed with
``docker kill`` while it runs, or after it. Each test that kills replicas starts from the three running again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import (  # tests/ is on sys.path under pytest
    every_replica_answering, lb_log_lines, wait_until_every_replica_answers,
)
from workshop.checkpoints import CheckpointFailed
from workshop.checkpoints import scaling as check
from workshop.containers import SCALE_FILES, ComposeStack, run
from workshop.services import free_port

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
    assert str(failure.value).startswith("7 instances occupées pendant 4 h coûtent 5,34 $, plus que le budget")


def test_served_by_counts_reads_single_lines_and_uniq_counts() -> None:
    output = "      4 x-served-by: aaa\n3 X-Served-By: bbb\nX-Served-By: aaa\r\nHTTP/1.1 200 OK\n"
    assert check.served_by_counts(output) == {"aaa": 5, "bbb": 3}


# ------------------------------------------------------------------------------ on the real scaled stack

REPLICAS = 3
#: The command a student runs, from the venv the tests run in.
WORKSHOP = str(Path(sys.executable).with_name("workshop"))


@pytest.fixture(scope="module")
def stack(docker_engine: None, docker_build_args: dict[str, str]) -> Iterator[ComposeStack]:
    """Three back-end replicas and the load balancer, as notebook 07 starts them, on a project of this module's own."""
    stack = ComposeStack(
        project=f"workshopnb07test{os.getpid()}", backend_port=None, lb_port=free_port(), image_tag="test",
        files=SCALE_FILES, **docker_build_args,
    )
    stack.build("backend", "lb")
    try:
        stack.up("lb", scale={"backend": REPLICAS})
        wait_until_every_replica_answers(stack.lb_url, REPLICAS, timeout=300)
        yield stack
    finally:
        stack.down()
    assert check.running_replicas(stack.project) == [] and check.stopped_replicas(stack.project) == {}


@pytest.fixture
def scaled(stack: ComposeStack) -> ComposeStack:
    """The stack with its three replicas running and answering through nginx, whatever a test before killed, by the
    line the checkpoint's sentences give a student."""
    every_replica_answering(stack, REPLICAS)
    assert check.stopped_replicas(stack.project) == {}
    return stack


def replica_ids(stack: ComposeStack) -> list[str]:
    return sorted(container[:12] for container in stack.containers("backend"))


def loadtest_command(stack: ComposeStack, output: Path, users: int, seconds: int) -> list[str]:
    """The notebook's load test against the load balancer."""
    return [WORKSHOP, "loadtest", stack.lb_url, "--users", str(users), "--duration", str(seconds), "--output", str(output)]


def kill_during_the_load(stack: ComposeStack, output: Path, victims: list[str], users: int = 4, seconds: int = 6) -> None:
    """Run the load test and ``docker kill`` the ``victims`` while it runs: once nginx has answered some of its
    requests (so the load has started), and while the load test is still running."""
    answered_before = len(lb_log_lines(stack))
    load = subprocess.Popen(
        loadtest_command(stack, output, users, seconds), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        while len(lb_log_lines(stack)) < answered_before + users + 2:
            assert load.poll() is None, f"the load test ended before nginx answered it:\n{load.stdout.read()}"
            time.sleep(0.2)
        assert load.poll() is None, "the load test ended before the kill"
        run(["docker", "kill", *victims])
    finally:
        printed, _ = load.communicate(timeout=seconds + 180)
    print(printed)


@pytest.mark.docker
@pytest.mark.slow
def test_the_notebooks_loop_over_every_replica_passes(scaled: ComposeStack, capsys: pytest.CaptureFixture[str]) -> None:
    loop = (
        'for i in $(seq 12); do\n  curl -si "http://127.0.0.1:$LB_PORT/health" | grep -i "^x-served-by"\n'
        "done | sort | uniq -c\n"
    )
    output = subprocess.run(["bash", "-c", loop], env={**os.environ, "LB_PORT": str(scaled.lb_port)},
                            capture_output=True, text=True, timeout=120, check=True).stdout
    check.spread(output, scaled.project)
    printed = capsys.readouterr().out
    assert printed.startswith(output.strip())  # the student's own output, then the verdict
    assert f"✅ 12 answers from 3 of 3 replicas ({', '.join(f'{name}: 4' for name in replica_ids(scaled))})." in printed


@pytest.mark.docker
@pytest.mark.slow
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
def test_a_loop_that_shows_no_spread_fails_with_its_sentence(scaled: ComposeStack, make_output, sentence: str) -> None:
    with pytest.raises(CheckpointFailed) as failure:
        check.spread(make_output(replica_ids(scaled)), scaled.project)
    assert str(failure.value).startswith(sentence)


@pytest.mark.docker
@pytest.mark.slow
def test_a_kill_during_the_load_passes_on_any_prediction_and_reveals_the_run(
    scaled: ComposeStack, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = replica_ids(scaled)[0]
    kill_during_the_load(scaled, tmp_path, [victim])
    capsys.readouterr()  # the load test's own lines
    run_ = check.load_run(tmp_path)
    assert run_.requests > 0 and run_.failures == 0  # nginx sent the dead replica's requests to the others
    killed_at = check.stopped_replicas(scaled.project)[victim]
    assert run_.started_at < killed_at < run_.finished_at
    figures = f"{run_.requests} requests, 0 failed, with replica {victim} killed at {killed_at:%H:%M:%S} UTC during the load"

    check.replica_killed(0, tmp_path, scaled.project, replicas=REPLICAS)
    assert capsys.readouterr().out.startswith(f"✅ {figures} (")
    check.replica_killed(0.0, tmp_path, scaled.project, replicas=REPLICAS)
    assert capsys.readouterr().out.endswith("): as you predicted.\n")
    # Any guess is recorded and compared, never graded: the measurement is revealed in one sentence.
    check.replica_killed(7, tmp_path, scaled.project, replicas=REPLICAS)
    assert capsys.readouterr().out.endswith(
        "): you predicted 7: nginx sent each request the dead replica dropped to another one, then left the dead one "
        "out.\n"
    )
    monkeypatch.setenv("WORKSHOP_LANG", "fr")
    check.replica_killed(3, tmp_path, scaled.project, replicas=REPLICAS)
    assert capsys.readouterr().out.startswith(f"✅ {run_.requests} requêtes, 0 en échec, avec la réplique {victim} arrêtée")
    monkeypatch.setenv("WORKSHOP_LANG", "en")

    for prediction in (None, ..., -1, 2.5, "0"):
        with pytest.raises(CheckpointFailed) as failure:
            check.replica_killed(prediction, tmp_path, scaled.project, replicas=REPLICAS)
        assert str(failure.value).startswith("Write your prediction first: set predicted_failures"), prediction
        assert "the load test need not run again" in str(failure.value)
    with pytest.raises(CheckpointFailed) as failure:
        check.replica_killed(0, tmp_path / "nothing-here", scaled.project, replicas=REPLICAS)
    assert str(failure.value).startswith(f"No figures in {tmp_path / 'nothing-here'}: run the cell with the load test")


@pytest.mark.docker
@pytest.mark.slow
def test_a_kill_after_the_load_fails_and_says_to_bring_the_replica_back_first(
    scaled: ComposeStack, tmp_path: Path
) -> None:
    subprocess.run(loadtest_command(scaled, tmp_path, users=2, seconds=2), check=True, capture_output=True, timeout=180)
    victim = replica_ids(scaled)[0]
    run(["docker", "kill", victim])
    run_ = check.load_run(tmp_path)
    assert run_.requests > 0 and run_.failures == 0
    with pytest.raises(CheckpointFailed) as failure:
        check.replica_killed(0, tmp_path, scaled.project, replicas=REPLICAS)
    killed_at = check.stopped_replicas(scaled.project)[victim]
    assert str(failure.value) == (
        f"Replica {victim} stopped at {killed_at:%H:%M:%S} UTC, after the load test ({run_.started_at:%H:%M:%S} UTC to "
        f"{run_.finished_at:%H:%M:%S} UTC): it met no request. Bring it back (WORKSHOP_BACKEND_PORT=127.0.0.1: "
        f"$COMPOSE -p {scaled.project} -f docker-compose.yml -f docker-compose.scale.yml up -d --scale backend=3 lb), "
        "then run the cell with docker kill again: the kill must come while the load runs."
    )


@pytest.mark.docker
@pytest.mark.slow
def test_no_kill_fails_with_its_sentence(scaled: ComposeStack, tmp_path: Path) -> None:
    subprocess.run(loadtest_command(scaled, tmp_path, users=1, seconds=1), check=True, capture_output=True, timeout=180)
    with pytest.raises(CheckpointFailed) as failure:
        check.replica_killed(0, tmp_path, scaled.project, replicas=REPLICAS)
    assert str(failure.value) == (
        "All 3 replicas still run: the docker kill line hit none; run the cell with docker kill again."
    )


@pytest.mark.docker
@pytest.mark.slow
def test_failed_requests_during_the_kill_fail_the_checkpoint(scaled: ComposeStack, tmp_path: Path) -> None:
    # Every replica killed: nginx has nowhere left to send the requests, and they fail.
    kill_during_the_load(scaled, tmp_path, replica_ids(scaled), users=2, seconds=4)
    run_ = check.load_run(tmp_path)
    assert run_.failures > 0
    with pytest.raises(CheckpointFailed) as failure:
        check.replica_killed(0, tmp_path, scaled.project, replicas=REPLICAS)
    assert str(failure.value).startswith(
        f"{run_.failures} of {run_.requests} requests failed while a replica was killed: the load balancer's log"
    )
    assert "bring the replicas back" in str(failure.value)
