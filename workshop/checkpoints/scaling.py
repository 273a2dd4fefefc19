"""Checkpoints of notebook 07, "Beyond one VM": a cost cap for Cloud Run, the spread over the replicas,
and a replica killed in the middle of a load test.

The replicas are the ``backend`` containers of one Compose project (``docker compose -p PROJECT``):
Docker labels each container with its project and service, which is how these checks find them,
whether Compose v1 or v2 started them. Each replica answers with its host name in ``X-Served-By``,
the first 12 digits of its container id (docker-compose.scale.yml leaves the host name empty).
"""

from __future__ import annotations

import json
import re
import subprocess
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
    expect(
        number >= 1,
        "A cap below 1 serves nobody: Cloud Run needs at least one instance to answer.",
        "Un plafond inférieur à 1 ne sert personne : il faut au moins une instance pour répondre.",
    )
    expect(
        cost <= budget,
        f"{number} instances busy for {hours:g} h cost ${cost:.2f}, over the budget of ${budget:.2f}: lower the cap "
        "(round down, not to the nearest).",
        f"{number} instances occupées pendant {hours:g} h coûtent {cost:.2f} $, plus que le budget de {budget:.2f} $ : "
        "baissez le plafond (arrondissez vers le bas).",
    )
    expect(
        cost + one > budget,
        f"{number} instances cost at most ${cost:.2f} for {hours:g} h: the budget of ${budget:.2f} pays for more, "
        "raise the cap.",
        f"{number} instances coûtent au plus {cost:.2f} $ en {hours:g} h : le budget de {budget:.2f} $ en paie "
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
        f"--max-instances={number} : au plus {cost:.2f} $ pour {hours:g} h, dans le budget de {budget:.2f} $.",
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
        f"{', '.join(strangers)} n'est pas une des répliques en marche de cette pile ({', '.join(replicas) or 'aucune'}) : "
        "appelez le répartiteur sur $LB_PORT, une fois la pile démarrée.",
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


def load_figures(folder: str | Path) -> tuple[int, int]:
    """``(requests, failures)`` over every step of a ``workshop loadtest --output FOLDER`` run (its ``loadtest.json``)."""
    summary = json.loads((Path(folder) / "loadtest.json").read_text())
    steps = summary["steps"]
    return sum(step["requests"] for step in steps), sum(step["failures"] for step in steps)


def replica_killed(prediction: object, results: str | Path, project: str, replicas: int) -> None:
    """Check the run where a replica was killed: one replica is gone, no request failed, and the prediction says so.

    ``prediction``: the number of failed requests the student expected; ``results``: the load test's
    ``--output`` folder; ``replicas``: how many were started.
    """
    predicted = _whole_number(prediction)
    expect(
        predicted is not None and predicted >= 0,
        "Write your prediction first: set predicted_failures to the number of requests you expect to fail "
        "(0 or more), then run the load test again.",
        "Écrivez d'abord votre prédiction : donnez à predicted_failures le nombre de requêtes qui échoueront selon "
        "vous (0 ou plus), puis relancez le test de charge.",
    )
    figures: list[int] = []
    guarded(
        lambda: figures.extend(load_figures(results)),
        f"No figures in {results}: run the load test cell above (it writes them there)",
        f"Aucun chiffre dans {results} : lancez la cellule du test de charge ci-dessus (elle les écrit là)",
    )
    requests, failures = figures
    alive = _listed_replicas(project)
    expect(
        requests > 0,
        "The load test sent no request: is the stack up? Run the cell above again.",
        "Le test de charge n'a envoyé aucune requête : la pile tourne-t-elle ? Relancez la cellule ci-dessus.",
    )
    expect(
        len(alive) < replicas,
        f"All {replicas} replicas still run: the docker kill line hit none; run the cell above again.",
        f"Les {replicas} répliques tournent encore : la ligne docker kill n'en a arrêté aucune ; relancez la cellule "
        "ci-dessus.",
    )
    expect(
        failures == 0,
        f"{failures} of {requests} requests failed while a replica was killed: read the load balancer's log "
        "($COMPOSE logs lb) for the replicas it tried.",
        f"{failures} requêtes sur {requests} ont échoué pendant l'arrêt d'une réplique : lisez le journal du "
        "répartiteur ($COMPOSE logs lb) pour voir les répliques essayées.",
    )
    expect(
        predicted == failures,
        f"You predicted {predicted} failed requests; the run had {failures} of {requests}: reread how nginx retries "
        "a request on another replica, then set your prediction to what you now expect.",
        f"Vous aviez prédit {predicted} échecs ; le test en a eu {failures} sur {requests} : relisez comment nginx "
        "renvoie une requête à une autre réplique, puis corrigez votre prédiction.",
    )
    passed(
        f"{requests} requests, {failures} failed, with {replicas - len(alive)} of {replicas} replicas killed: "
        "as you predicted.",
        f"{requests} requêtes, {failures} échec, avec {replicas - len(alive)} réplique arrêtée sur {replicas} : "
        "comme prévu.",
    )

