"""Checkpoints of notebook 07, "Beyond one VM": a cost cap for Cloud Run, the spread over the replicas,
and a replica killed in the middle of a load test (Docker's time of the kill against the load test's times).

The replicas are the ``backend`` containers of one Compose project (``docker compose -p PROJECT``):
Docker labels each container with its project and service, which is how these checks find them,
whether Compose v1 or v2 started them. Each replica answers with its host name in ``X-Served-By``,
the first 12 digits of its container id (docker-compose.scale.yml leaves the host name empty).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from workshop.checkpoints import expect, fail, guarded, passed

#: Seconds in an hour, for prices given per second.
_HOUR = 3600

# One answer's line in the student's output: "x-served-by: 3f2a1b0c9d8e", with "uniq -c"'s count before it
# when there is one ("      4 x-served-by: 3f2a1b0c9d8e").
_SERVED_BY = re.compile(r"^\s*(?:(\d+)\s+)?.*?x-served-by:\s*(\S+)", re.IGNORECASE)


def _whole_number(value: object) -> int | None:
    """``value`` as an int when it is a whole number (``6`` or ``6.0``), else None (``None``, ``...``, ``6.5``, text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def instance_cost(cpu: float, memory_gib: float, cpu_price: float, memory_price: float, hours: float) -> float:
    """What one Cloud Run instance busy for ``hours`` costs: vCPU-seconds and GiB-seconds at their price per second."""
    return (cpu * cpu_price + memory_gib * memory_price) * hours * _HOUR


def max_instances(
    answer: object, *, budget: float, hours: float, cpu: float, memory_gib: float, cpu_price: float,
    memory_price: float,
) -> None:
    """Check ``--max-instances`` for a budget: the most instances that, all busy for ``hours``, cost at most ``budget``.

    Prices are per vCPU-second and per GiB-second. The cap must also be one the Cloud Run plan accepts
    (:class:`~workshop.deploy.gcp.DeployConfig`), and the plan's ``gcloud run deploy`` must carry it.
    """
    number = _whole_number(answer)
    expect(
        number is not None,
        "Set max_instances to a whole number of instances, computed from the prices above.",
        "Donnez à max_instances un nombre entier d'instances, calculé à partir des prix ci-dessus.",
    )
    assert number is not None
    one = instance_cost(cpu, memory_gib, cpu_price, memory_price, hours)
    cost = number * one
    # The same amounts with a decimal comma, for the French sentences.
    fr_cost, fr_budget = f"{cost:.2f}".replace(".", ","), f"{budget:.2f}".replace(".", ",")
    expect(
        number >= 1,
        "A cap below 1 serves nobody: Cloud Run needs at least one instance to answer.",
        "Un plafond inférieur à 1 ne sert personne : il faut au moins une instance pour répondre.",
    )
    expect(
        cost <= budget,
        f"{number} instances busy for {hours:g} h cost ${cost:.2f}, over the budget of ${budget:.2f}: lower the cap "
        "(round down, not to the nearest).",
        f"{number} instances occupées pendant {hours:g} h coûtent {fr_cost} $, plus que le budget de {fr_budget} $ : "
        "baissez le plafond (arrondissez vers le bas).",
    )
    expect(
        cost + one > budget,
        f"{number} instances cost at most ${cost:.2f} for {hours:g} h: the budget of ${budget:.2f} pays for more, "
        "raise the cap.",
        f"{number} instances coûtent au plus {fr_cost} $ en {hours:g} h : le budget de {fr_budget} $ en paie "
        "davantage, montez le plafond.",
    )

    def in_the_plan() -> None:
        from workshop.deploy.gcp import DeployConfig, cloud_run_deploy_step

        command = cloud_run_deploy_step(DeployConfig(project="workshop-check", max_instances=number)).command
        if f"--max-instances={number}" not in command:
            raise AssertionError(f"--max-instances={number} is not in {' '.join(command)}")

    guarded(
        in_the_plan,
        f"The Cloud Run plan does not take --max-instances={number}",
        f"Le plan Cloud Run n'accepte pas --max-instances={number}",
    )
    passed(
        f"--max-instances={number}: at most ${cost:.2f} for {hours:g} h, within the budget of ${budget:.2f}.",
        f"--max-instances={number} : au plus {fr_cost} $ pour {hours:g} h, dans le budget de {fr_budget} $.",
    )


def running_replicas(project: str, service: str = "backend") -> list[str]:
    """The running containers of ``service`` in the Compose project ``project``: their 12-digit ids."""
    result = subprocess.run(
        ["docker", "ps", "--filter", f"label=com.docker.compose.project={project}",
         "--filter", f"label=com.docker.compose.service={service}", "--format", "{{.ID}}"],
        capture_output=True, text=True, timeout=60,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip() or "docker ps failed")
    return [line.strip()[:12] for line in result.stdout.splitlines() if line.strip()]


def _listed_replicas(project: str) -> list[str]:
    """:func:`running_replicas`, or a one-sentence failure when Docker cannot list them."""
    replicas: list[str] = []
    guarded(
        lambda: replicas.extend(running_replicas(project)),
        "Docker did not list the replicas: is the engine running?",
        "Docker n'a pas listé les répliques : le moteur tourne-t-il ?",
    )
    return replicas


def served_by_counts(output: str) -> dict[str, int]:
    """Answers per replica in a loop's output: one ``x-served-by: NAME`` per line, or ``uniq -c``'s counts of them."""
    counts: dict[str, int] = {}
    for line in output.splitlines():
        match = _SERVED_BY.match(line)
        if match:
            name = match.group(2).strip()
            counts[name] = counts.get(name, 0) + int(match.group(1) or 1)
    return counts


def spread(output: str | None, project: str, minimum_requests: int = 6) -> None:
    """Check the student's curl loop: its answers name at least two of the project's running replicas, and only those.

    ``output``: what the loop printed (``%%bash --out``), each answer's ``X-Served-By`` header, or
    ``sort | uniq -c``'s count of them.
    """
    text = (output or "").strip()
    expect(
        bool(text),
        "Your loop printed nothing: call the load balancer (port $LB_PORT) with curl -si in a loop and keep the "
        "X-Served-By lines (grep -i x-served-by).",
        "Votre boucle n'a rien affiché : appelez le répartiteur (port $LB_PORT) avec curl -si dans une boucle et "
        "gardez les lignes X-Served-By (grep -i x-served-by).",
    )
    print(text)
    counts = served_by_counts(text)
    expect(
        bool(counts),
        "No 'X-Served-By: ...' line in your loop's output: print the answers' headers (curl -si, or -D -) and keep "
        "that one with grep -i x-served-by.",
        "Aucune ligne « X-Served-By: ... » dans la sortie de votre boucle : affichez les en-têtes des réponses "
        "(curl -si, ou -D -) et gardez celle-là avec grep -i x-served-by.",
    )
    replicas = _listed_replicas(project)
    strangers = sorted(set(counts) - set(replicas))
    expect(
        not strangers,
        f"{', '.join(strangers)} is not one of this stack's running replicas ({', '.join(replicas) or 'none'}): "
        "call the load balancer on $LB_PORT, after the stack is up.",
        f"{', '.join(strangers)} n'est pas une des répliques en marche de cette stack "
        f"({', '.join(replicas) or 'aucune'}) : appelez le répartiteur sur $LB_PORT, une fois la stack démarrée.",
    )
    total = sum(counts.values())
    expect(
        total >= minimum_requests,
        f"Only {total} answers: send at least {minimum_requests} requests, so that the spread shows.",
        f"Seulement {total} réponses : envoyez au moins {minimum_requests} requêtes, pour que la répartition se voie.",
    )
    expect(
        len(counts) >= 2,
        f"All {total} answers came from one replica: call the load balancer ($LB_PORT), not one back-end's own port.",
        f"Les {total} réponses viennent d'une seule réplique : appelez le répartiteur ($LB_PORT), pas le port d'un "
        "back-end.",
    )
    shares = ", ".join(f"{name}: {count}" for name, count in sorted(counts.items()))
    passed(
        f"{total} answers from {len(counts)} of {len(replicas)} replicas ({shares}).",
        f"{total} réponses de {len(counts)} répliques sur {len(replicas)} ({shares}).",
    )


@dataclass(frozen=True)
class LoadRun:
    """What a ``workshop loadtest --output FOLDER`` run measured (its ``loadtest.json``), every step together."""

    requests: int
    failures: int
    #: When the load ran (UTC): the first step's first figure to the last step's last answer; None without a request.
    started_at: datetime | None
    finished_at: datetime | None


def _moment(text: str | None) -> datetime | None:
    """An ISO 8601 time (``loadtest.json``'s, or Docker's RFC 3339 with nanoseconds) as an aware datetime."""
    if not text:
        return None
    # Docker writes up to nine digits of a second ("...:20.123456789Z", trailing zeros dropped); datetime reads six.
    text = re.sub(r"\.(\d+)", lambda digits: "." + digits.group(1)[:6].ljust(6, "0"), text.strip())
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def load_run(folder: str | Path) -> LoadRun:
    """The figures of a ``workshop loadtest --output FOLDER`` run, read from its ``loadtest.json``."""
    summary = json.loads((Path(folder) / "loadtest.json").read_text())
    steps = summary["steps"]
    return LoadRun(
        requests=sum(step["requests"] for step in steps),
        failures=sum(step["failures"] for step in steps),
        started_at=_moment(summary.get("started_at")),
        finished_at=_moment(summary.get("finished_at")),
    )


def load_figures(folder: str | Path) -> tuple[int, int]:
    """``(requests, failures)`` over every step of a ``workshop loadtest --output FOLDER`` run (its ``loadtest.json``)."""
    run = load_run(folder)
    return run.requests, run.failures


def stopped_replicas(project: str, service: str = "backend") -> dict[str, datetime]:
    """The stopped containers of ``service`` in the Compose project ``project``: their 12-digit ids, and when each
    stopped (UTC, as Docker recorded it)."""
    listed = subprocess.run(
        ["docker", "ps", "--all", "--filter", f"label=com.docker.compose.project={project}",
         "--filter", f"label=com.docker.compose.service={service}", "--filter", "status=exited", "--format", "{{.ID}}"],
        capture_output=True, text=True, timeout=60,
    )
    if listed.returncode != 0:
        raise RuntimeError(listed.stderr.strip() or "docker ps failed")
    ids = [line.strip()[:12] for line in listed.stdout.splitlines() if line.strip()]
    if not ids:
        return {}
    inspected = subprocess.run(
        ["docker", "inspect", "--format", "{{.State.FinishedAt}}", *ids], capture_output=True, text=True, timeout=60,
    )
    if inspected.returncode != 0:
        raise RuntimeError(inspected.stderr.strip() or "docker inspect failed")
    return {name: _moment(line) for name, line in zip(ids, inspected.stdout.split(), strict=True)}


def _clock(moment: datetime) -> str:
    """``10:32:20 UTC``: a time of the load test or of a kill, as the messages say it."""
    return moment.astimezone(timezone.utc).strftime("%H:%M:%S UTC")


#: The line that brings the killed replica back (Compose starts the stopped one again), as notebook 07 writes it.
_RESTORE = "WORKSHOP_BACKEND_PORT=127.0.0.1: $COMPOSE -p {project} -f docker-compose.yml -f docker-compose.scale.yml " \
    "up -d --scale backend={replicas} lb"


def replica_killed(prediction: object, results: str | Path, project: str, replicas: int) -> None:
    """Check the run where a replica was killed under load, then reveal how it went against the prediction.

    ``prediction``: the number of failed requests the student expected (any whole number of 0 or more passes: the
    checkpoint compares, it does not grade the guess); ``results``: the load test's ``--output`` folder;
    ``replicas``: how many were started. The run must have killed a replica while the load ran (Docker's time of
    the kill within ``loadtest.json``'s), and nginx must have answered every request. No sentence asks to run the
    kill again while a replica is down: each says first how to bring the replicas back.
    """
    predicted = _whole_number(prediction)
    expect(
        predicted is not None and predicted >= 0,
        "Write your prediction first: set predicted_failures, in the cell under Exercise 2, to the number of requests "
        "you expect to fail (0 or more), run that cell, then this one (the load test need not run again).",
        "Notez d'abord votre pronostic : dans la cellule sous l'exercice 2, donnez à predicted_failures le nombre "
        "de requêtes qui échoueront selon vous (0 ou plus). Exécutez-la, puis celle-ci, sans relancer le test de "
        "charge.",
    )
    restore = _RESTORE.format(project=project, replicas=replicas)
    figures: list[LoadRun] = []
    guarded(
        lambda: figures.append(load_run(results)),
        f"No figures in {results}: run the cell with the load test and docker kill (it writes them there)",
        f"Aucun chiffre dans {results} : lancez la cellule du test de charge et de docker kill (elle les écrit là)",
    )
    run = figures[0]
    expect(
        run.requests > 0 and run.started_at is not None and run.finished_at is not None,
        f"The load test sent no request: is the stack up? Bring it up ({restore}), then run the cell with docker kill "
        "again.",
        f"Le test de charge n'a envoyé aucune requête : la stack tourne-t-elle ? Démarrez-la ({restore}), puis "
        "relancez la cellule de docker kill.",
    )
    assert run.started_at is not None and run.finished_at is not None
    killed: dict[str, datetime] = {}
    guarded(
        lambda: killed.update(stopped_replicas(project)),
        "Docker did not list the replicas: is the engine running?",
        "Docker n'a pas listé les répliques : le moteur tourne-t-il ?",
    )
    alive = _listed_replicas(project)
    expect(
        bool(killed) and len(alive) < replicas,
        f"All {replicas} replicas still run: the docker kill line hit none; run the cell with docker kill again.",
        f"Les {replicas} répliques tournent encore, la ligne docker kill n'en a arrêté aucune. Relancez la cellule "
        "de docker kill.",
    )
    window = f"{_clock(run.started_at)} to {_clock(run.finished_at)}"
    fenetre = f"de {_clock(run.started_at)} à {_clock(run.finished_at)}"
    during = {name: at for name, at in killed.items() if run.started_at <= at <= run.finished_at}
    if not during:
        name, at = max(killed.items(), key=lambda item: item[1])
        when, quand = ("after", "après") if at > run.finished_at else ("before", "avant")
        fail(
            f"Replica {name} stopped at {_clock(at)}, {when} the load test ({window}): it met no request. Bring it "
            f"back ({restore}), then run the cell with docker kill again: the kill must come while the load runs.",
            f"La réplique {name} s'est arrêtée à {_clock(at)}, {quand} le test de charge ({fenetre}), sans recevoir "
            f"aucune requête. L'arrêt doit tomber pendant la charge : ramenez-la ({restore}), puis relancez la "
            "cellule de docker kill.",
        )
    expect(
        run.failures == 0,
        f"{run.failures} of {run.requests} requests failed while a replica was killed: the load balancer's log "
        f"($COMPOSE logs lb) says which replicas each one met. To try again, bring the replicas back ({restore}), "
        "then run the cell with docker kill.",
        f"{run.failures} requêtes sur {run.requests} ont échoué pendant l'arrêt d'une réplique : le journal du "
        f"répartiteur ($COMPOSE logs lb) dit quelles répliques chacune a essayées. Pour réessayer, ramenez les "
        f"répliques ({restore}), puis relancez la cellule de docker kill.",
    )
    name, at = min(during.items(), key=lambda item: item[1])
    if predicted == run.failures:
        verdict, verdict_fr = "as you predicted", "comme vous l'aviez prévu"
    else:
        verdict = (f"you predicted {predicted}: nginx sent each request the dead replica dropped to another one, then "
                   "left the dead one out")
        verdict_fr = (f"vous aviez prévu {predicted} : nginx a renvoyé à une autre réplique chaque requête perdue "
                      "par la réplique arrêtée, puis l'a écartée")
    passed(
        f"{run.requests} requests, {run.failures} failed, with replica {name} killed at {_clock(at)} during the load "
        f"({window}): {verdict}.",
        f"{run.requests} requêtes, {run.failures} en échec, avec la réplique {name} arrêtée à {_clock(at)} pendant la "
        f"charge ({fenetre}) : {verdict_fr}.",
    )
