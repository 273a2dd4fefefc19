"""The ``workshop`` command: serve the API, call it, train the demo model, write samples.

Each sub-command is a thin layer over the package: the logic lives in the
modules it calls, so a notebook can do the same thing in one import.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from workshop import __version__
from workshop.checkpoints import say  # the notebook's language, for what a command prints


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from workshop.settings import get_settings

    settings = get_settings()
    uvicorn.run(
        "workshop.backend.app:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_level=settings.log_level,
        # The app writes its own JSON access line (with the request id); uvicorn's would be a second one.
        access_log=False,
        # One process: the models live in its memory (see workshop.registry).
        workers=1,
        timeout_graceful_shutdown=10,
    )
    return 0


def ui_command(host: str, port: int, xsrf_protection: bool = True) -> list[str]:
    """The ``streamlit run`` command line for the front-end.

    ``xsrf_protection`` is Streamlit's check on uploads (``WORKSHOP_UI_XSRF_PROTECTION``): the page copies
    a cookie into a header, and the server compares the two. Where the page runs in another site's frame,
    as in a codespace's port preview, the browser withholds that cookie and every upload gets a 403.
    """
    from workshop.frontend import APP_PATH

    return [
        sys.executable, "-m", "streamlit", "run", str(APP_PATH),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.enableXsrfProtection", str(xsrf_protection).lower(),
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",  # no "Deploy" button: this app deploys itself
    ]


def _ui(args: argparse.Namespace) -> int:
    from workshop.settings import get_settings

    settings = get_settings()
    env = dict(os.environ)
    if args.backend_url:
        env["WORKSHOP_BACKEND_URL"] = args.backend_url
    command = ui_command(args.host or settings.ui_host, args.port or settings.ui_port, settings.ui_xsrf_protection)
    # Replace this process with Streamlit: signals (Ctrl-C, docker stop) then reach it directly,
    # and no wrapper is left behind when it stops.
    os.execve(command[0], command, env)
    return 0  # not reached


def _predict(args: argparse.Namespace) -> int:
    from workshop.client import BackendError, WorkshopClient

    from workshop.settings import get_settings

    client = WorkshopClient(args.url or get_settings().backend_url, api_key=args.api_key, timeout=args.timeout)
    params = {"confidence": args.confidence, "iou": args.iou, "image_size": args.image_size}
    params = {key: value for key, value in params.items() if value is not None}
    status = 0
    for image in args.images:
        try:
            result = client.predict(Path(image), model=args.model, **params)
        except (BackendError, OSError) as error:
            print(say(f"{image}: error: {error}", f"{image} : erreur : {error}"), file=sys.stderr)
            status = 1
            continue
        if args.json:
            print(result.model_dump_json(indent=2))
        else:
            size, milliseconds = f"{result.image_width}x{result.image_height}", f"{result.time * 1000:.0f}"
            print(say(
                f"{image}: {len(result.detections)} detections by '{result.model}' in {milliseconds} ms ({size})",
                f"{image} : {len(result.detections)} détections par '{result.model}' en {milliseconds} ms ({size})",
            ))
            for d in result.detections:
                print(
                    f"  {d.class_name:<12} {d.confidence:5.2f}  "
                    f"[{d.x_min:7.1f}, {d.y_min:7.1f}, {d.x_max:7.1f}, {d.y_max:7.1f}]"
                )
        if args.save:
            from PIL import Image

            from workshop.drawing import draw_detections

            out = Path(args.save)
            if len(args.images) > 1:
                out = out.with_name(f"{Path(image).stem}_{out.name}")
            draw_detections(Image.open(image), result.detections).save(out)
            print(say(f"  annotated image: {out}", f"  image annotée : {out}"))
    return status


def _train_demo(args: argparse.Namespace) -> int:
    from workshop.demo.train import TrainConfig, train_demo
    from workshop.registry import bundled_weights_path

    config = TrainConfig(
        train_images=args.images,
        val_images=max(20, args.images // 4),
        heldout_images=args.heldout,
        epochs=args.epochs,
        image_size=args.image_size,
        seed=args.seed,
    )
    output = Path(args.output) if args.output else bundled_weights_path()
    report = train_demo(output, config)
    print(report.to_json())
    print(f"Weights written to {output}")
    return 0


def _preload(args: argparse.Namespace) -> int:
    """Load each model once so its weights are on disk (a Dockerfile bakes them into the image)."""
    from workshop.registry import ModelError, ModelRegistry
    from workshop.settings import get_settings

    registry = ModelRegistry(get_settings())
    status = 0
    for name in args.models:
        try:
            model = registry.get(name)
            print(f"preloaded {name}: {model.spec.weights} ({model.spec.source})")
        except ModelError as error:
            if args.allow_missing:
                print(f"skipped {name}: {error}")
            else:
                print(f"error {name}: {error}", file=sys.stderr)
                status = 1
    return status


def _export(args: argparse.Namespace) -> int:
    """Export models for the ONNX Runtime / OpenVINO engines into the cache (the back-end image serves these)."""
    from workshop.engines.export import ensure_export
    from workshop.registry import ModelError, ModelRegistry
    from workshop.settings import get_settings

    settings = get_settings()
    registry = ModelRegistry(settings)
    status = 0
    for name in args.models:
        for engine in args.engines:
            try:
                spec = registry.spec(name)
                directory, made = ensure_export(
                    spec.weights, name, engine, settings.exports_dir, args.image_size, force=args.force
                )
                print(f"{'exported' if made else 'cached'} {name} for {engine}: {directory}")
            except ModelError as error:
                if args.allow_missing:
                    print(f"skipped {name} for {engine}: {error}")
                else:
                    print(f"error {name} for {engine}: {error}", file=sys.stderr)
                    status = 1
    return status


def _bench(args: argparse.Namespace) -> int:
    """Measure engines and the API on this machine; write the markdown report."""
    from workshop.bench.report import render
    from workshop.bench.runner import BenchConfig, run_benchmark

    config = BenchConfig(
        models=args.models, engines=args.engines, clients=args.clients, base64_clients=args.base64_clients,
        seconds=args.seconds, goal_rounds=args.rounds, containers=args.containers,
    )
    command = "workshop bench" + (" " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "")
    report = render(run_benchmark(config, progress=lambda line: print(line, flush=True), command=command))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)
    print(report)
    print(f"Report written to {output}")
    return 0


def _bench_images(args: argparse.Namespace) -> int:
    """Measure the images of a baseline commit and of this one, side by side; write docs/benchmarks.md's section."""
    from workshop.bench.images import ImageBenchConfig, render_section, run_image_benchmark, write_section

    config = ImageBenchConfig(
        baseline=args.baseline, candidate=args.candidate, runs=args.runs, cpu_torch_wheel=args.cpu_torch_wheel,
        docker_lock=args.docker_lock,
    )
    command = "workshop bench-images" + (" " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "")
    section = render_section(run_image_benchmark(config, progress=lambda line: print(line, flush=True), command=command))
    write_section(Path(args.output), section)
    print(section)
    print(f"Section written to {args.output}")
    return 0


def _user_counts(text: str) -> list[int]:
    """``--steps 1,2,4,8`` as a list of user counts, each at least 1."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give user counts separated by commas, e.g. 1,2,4,8")
    return counts


def _positive_int(text: str) -> int:
    """An argument that counts something: a whole number, at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number, at least 1")
    return value


def _loadtest(args: argparse.Namespace) -> int:
    """Run Locust headless against one back-end, once per user count; write the figures and the plot."""
    from workshop.loadtest import LoadTestError, check_url, run_loadtest
    from workshop.loadtest.runner import failure_hint, format_table
    from workshop.lab import fast_mode

    # 15 s a step gives steady figures; the notebooks' fast mode (CI) takes 3, so that the commands they show
    # need no option a student would not type.
    seconds = args.duration or (3 if fast_mode() else 15)

    try:
        url = check_url(args.url)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        report = run_loadtest(
            url, args.steps or [args.users], seconds, Path(args.output), spawn_rate=args.spawn_rate,
            api_key=args.api_key, progress=lambda line: print(line, flush=True),
        )
    except LoadTestError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(format_table(report.steps))
    print(say(f"Figures written to {report.csv}, {report.json} and {report.plot}",
              f"Chiffres écrits dans {report.csv}, {report.json} et {report.plot}"))
    hint = failure_hint(report.steps, url)
    if hint:
        print(hint, file=sys.stderr)
        return 1  # as Locust's own exit code: the figures are written, but some requests failed
    return 0


def _healthcheck(args: argparse.Namespace) -> int:
    """Exit 0 when ``url`` answers 200 (for Docker's HEALTHCHECK: slim images have no curl)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(args.url, timeout=args.timeout) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as error:
        print(say(f"unhealthy: {args.url}: {error}", f"contrôle de santé en échec : {args.url} : {error}"), file=sys.stderr)
        return 1


def _check(args: argparse.Namespace) -> int:
    """Grade one deployment (URL) or a class (--roster) against the workshop's contract; exit 0 when all pass."""
    import json

    from workshop.check import (
        DEFAULT_LATENCY_BUDGET_SECONDS, DEFAULT_TIMEOUT_SECONDS, DEFAULT_WORKERS, RosterError, check_deployment,
        check_roster, format_report, format_roster, identity_token, is_cloud_run, marks_for, parallel_checks,
        read_roster, write_roster_csv,
    )

    def google_identity(urls: list[str]) -> str | None:
        # Cloud Run services check the caller's Google identity first: the grader's, from gcloud.
        if not any(is_cloud_run(url) for url in urls):
            return None
        token = identity_token()
        print(say("Cloud Run URLs: sending the identity token of gcloud's account (gcloud auth print-identity-token).",
                  "URL Cloud Run : envoi du jeton d'identité du compte gcloud (gcloud auth print-identity-token).")
              if token else
              say("Cloud Run URLs, but gcloud gives no identity token: log in (gcloud auth login) as an account the "
                  "students let in.",
                  "URL Cloud Run, mais gcloud ne donne aucun jeton d'identité : connectez-vous (gcloud auth login) "
                  "avec un compte que les étudiants ont autorisé."), file=sys.stderr, flush=True)
        return token

    if (args.url is None) == (args.roster is None):
        print(say("error: give one back-end URL, or --roster FILE.csv for a class",
                  "erreur : donnez l'URL d'un back-end, ou --roster FICHIER.csv pour une classe"), file=sys.stderr)
        return 2
    if args.roster and args.api_key:
        print(say("error: --api-key goes with one URL; a roster gives each student's key in its key column",
                  "erreur : --api-key va avec une seule URL ; une liste de classe donne la clé de chaque étudiant "
                  "dans sa colonne key"), file=sys.stderr)
        return 2
    timeout = args.timeout or DEFAULT_TIMEOUT_SECONDS
    budget = args.max_latency or DEFAULT_LATENCY_BUDGET_SECONDS
    marks = marks_for(sys.stdout)
    if hasattr(sys.stdout, "reconfigure"):
        # A server's text may hold what this terminal cannot print: a "?" instead, never a crash.
        sys.stdout.reconfigure(errors="replace")
    if args.url is not None:
        report = check_deployment(args.url, args.api_key, timeout=timeout, latency_budget=budget,
                                  identity_token=google_identity([args.url]))
        print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report, marks))
        return 0 if report.passed else 1

    try:
        entries = read_roster(args.roster)
    except RosterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    workers = args.workers or DEFAULT_WORKERS
    print(f"Checking {len(entries)} deployments, {parallel_checks(workers, len(entries))} at a time...",
          file=sys.stderr, flush=True)
    results = check_roster(
        entries, workers=workers, timeout=timeout, latency_budget=budget,
        identity_token=google_identity([entry.url for entry in entries]),
        on_result=lambda result: print(
            f"  {result.entry.name}: {result.report.score}", file=sys.stderr, flush=True
        ),
    )
    roster = Path(args.roster)
    output = write_roster_csv(results, Path(args.output or roster.with_name(f"{roster.stem}-results.csv")))
    if args.json:
        # The keys stay out of the output: it ends up in screenshots and shared folders.
        print(json.dumps([{"name": r.entry.name, **r.report.to_dict()} for r in results], indent=2))
    else:
        print(format_roster(results, marks))
        print(f"Results written to {output}")
    return 0 if all(result.passed for result in results) else 1


def _gcp_config(args: argparse.Namespace):
    import os

    from workshop.deploy.gcp import (
        TEACHER_ACCOUNT_VARIABLE, TEACHER_IP_VARIABLE, DeployConfig, default_project, resolve_student,
    )

    project = args.project or default_project()
    if not project:
        raise SystemExit(say("No project: pass --project PROJECT_ID (or run `gcloud config set project PROJECT_ID`).",
                             "Pas de projet : passez --project ID_PROJET (ou lancez `gcloud config set project "
                             "ID_PROJET`)."))
    # Teardown has none of deploy's own flags: DeployConfig's defaults stand (its names are all it needs).
    deploy_only = {
        name: getattr(args, name)
        for name in ("cpu", "memory", "max_instances", "max_run_duration") if hasattr(args, name)
    }
    return DeployConfig(
        project=project, region=args.region, zone=args.zone, repository=args.repository,
        tag=args.tag, local_image=args.image,
        vm_name=args.vm_name, machine_type=args.machine_type, service_name=args.service_name,
        source_range=getattr(args, "source_range", None), api_key=getattr(args, "api_key", None),
        teacher_ip=getattr(args, "teacher_ip", None) or os.environ.get(TEACHER_IP_VARIABLE) or None,
        teacher_account=getattr(args, "teacher_account", None) or os.environ.get(TEACHER_ACCOUNT_VARIABLE) or None,
        student=resolve_student(args.student), **deploy_only,
    )


def _gcp_deploy(args: argparse.Namespace) -> int:
    from workshop.deploy.runner import StepFailed, deploy, deploy_cloud_run

    try:
        if args.target == "cloud-run":
            deploy_cloud_run(_gcp_config(args), execute_steps=args.execute)
        else:
            deploy(_gcp_config(args), execute_steps=args.execute, timeout=args.timeout)
    except (StepFailed, ValueError) as error:
        print(say(f"error: {error}", f"erreur : {error}"), file=sys.stderr)
        return 1
    return 0


def _gcp_teardown(args: argparse.Namespace) -> int:
    from workshop.deploy.runner import StepFailed, teardown

    try:
        left = teardown(
            _gcp_config(args), execute_steps=args.execute, delete_image=args.delete_image,
            delete_repository=args.delete_repository, target=args.target,
        )
    except (StepFailed, ValueError) as error:
        print(say(f"error: {error}", f"erreur : {error}"), file=sys.stderr)
        return 1
    return 1 if left else 0  # the exit code says whether anything it was asked to delete is left


def _gcp_preflight(args: argparse.Namespace) -> int:
    from workshop.deploy import preflight
    from workshop.deploy.gcp import CLOUD_RUN_APIS, REQUIRED_APIS, default_project

    project = args.project or default_project()
    apis = CLOUD_RUN_APIS if args.target == "cloud-run" else REQUIRED_APIS
    findings = preflight.run(project, apis, students=args.students, region=args.region,
                             machine_type=args.machine_type)
    print(preflight.report(findings, args.students))
    return 0 if all(finding.ok for finding in findings) else 1


def _gcp_whoami(args: argparse.Namespace) -> int:
    from workshop.deploy.whoami import whoami

    return whoami(args.project, student=args.student, suffix_only=args.suffix, source_range_only=args.source_range,
                  teacher_ip=args.teacher_ip)


def _gcp_api_key(args: argparse.Namespace) -> int:
    from workshop.deploy.gcp import DeployConfig, resolve_api_key

    from workshop.deploy.whoami import NAMES_ONLY

    config = DeployConfig(project=NAMES_ONLY)
    for note in resolve_api_key(config):
        print(note)
    return 0


def _add_gcp_commands(commands: argparse._SubParsersAction) -> None:
    from workshop.deploy.gcp import TEACHER_ACCOUNT_VARIABLE, TEACHER_IP_VARIABLE, DeployConfig

    # One source for the defaults: the flags show DeployConfig's own.
    default = {field.name: field.default for field in dataclasses.fields(DeployConfig)}
    gcp = commands.add_parser(
        "gcp", help="deploy the back-end to a Google Compute Engine VM or to Cloud Run (dry run by default)",
    )
    actions = gcp.add_subparsers(dest="action", required=True, metavar="ACTION")
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--target", choices=("vm", "cloud-run"), default="vm",
        help="vm: one Compute Engine VM; cloud-run: a Cloud Run service that scales, IAM-protected "
        "(default: %(default)s)",
    )
    where.add_argument("--project", help="Google Cloud project id (default: gcloud's configured project)")
    where.add_argument("--region", default=default["region"], help="default: %(default)s")
    where.add_argument("--machine-type", default=default["machine_type"], help="default: %(default)s")
    common = argparse.ArgumentParser(add_help=False, parents=[where])
    common.add_argument("--zone", help="default: <region>-b")
    common.add_argument(
        "--repository", default=default["repository"], help="Artifact Registry repository (default: %(default)s)",
    )
    # Both targets push the same back-end image (backend/Dockerfile: ONNX Runtime, no PyTorch).
    common.add_argument(
        "--image", default=default["local_image"], help="local image to push (default: %(default)s)",
    )
    common.add_argument("--tag", default=default["tag"], help="tag in the registry (default: %(default)s)")
    common.add_argument("--vm-name", default=default["vm_name"], help="default: %(default)s")
    common.add_argument(
        "--service-name", default=default["service_name"], help="Cloud Run service (default: %(default)s)",
    )
    common.add_argument(
        "--student", help="suffix for your VM, firewall rule, Cloud Run service and image in a project shared by a "
        "class (default: derived from your gcloud account)",
    )
    common.add_argument("--execute", action="store_true", help="run the commands instead of printing them")

    deploy = actions.add_parser(
        "deploy", parents=[common],
        help="push the image, create the VM and the firewall rule (or the Cloud Run service)",
    )
    deploy.add_argument(
        "--api-key", help="API key the back-end will require: letters, digits and - _ . ~ (default: the existing "
        "VM's key, else the one saved in .workshop-deploy/, else a new one)",
    )
    deploy.add_argument(
        "--source-range", help="vm: who may reach port 8000 (default: your public IP, else everyone)",
    )
    deploy.add_argument(
        "--teacher-ip", help=f"vm: the teacher's address, let in by the firewall too (default: ${TEACHER_IP_VARIABLE})",
    )
    deploy.add_argument(
        "--teacher-account", help="cloud-run: the teacher's Google account, allowed to call the service "
        f"(roles/run.invoker; default: ${TEACHER_ACCOUNT_VARIABLE})",
    )
    deploy.add_argument(
        "--timeout", type=float, default=600, help="vm: seconds to wait for /health (default: %(default)s)",
    )
    deploy.add_argument(
        "--max-run-duration", default=default["max_run_duration"],
        help="vm: the VM deletes itself after this long, e.g. 90m, 4h, 1d "
        "(cost guard; default: %(default)s; '' for no limit)",
    )
    deploy.add_argument(
        "--max-instances", type=int, default=default["max_instances"],
        help="cloud-run: most instances running at once (cost guard; "
        "default: %(default)s; none run when idle)",
    )
    deploy.add_argument("--cpu", default=default["cpu"], help="cloud-run: CPUs per instance (default: %(default)s)")
    deploy.add_argument(
        "--memory", default=default["memory"], help="cloud-run: memory per instance (default: %(default)s)",
    )
    deploy.set_defaults(handler=_gcp_deploy)

    teardown = actions.add_parser(
        "teardown", parents=[common],
        help="delete the VM and the firewall rule (or the Cloud Run service); exit code 1 if any is left",
    )
    teardown.add_argument("--delete-image", action="store_true", help="also delete the pushed image")
    teardown.add_argument("--delete-repository", action="store_true", help="also delete the repository")
    teardown.set_defaults(handler=_gcp_teardown)

    preflight = actions.add_parser(
        "preflight", parents=[where],
        help="check that the project is ready: logged in, billing, APIs; with --students, a whole class's quotas, "
        "organisation policies and your role (exit code 1 when not ready)",
    )
    preflight.add_argument("--students", type=_positive_int, help="the class's size: check what N VMs need")
    preflight.set_defaults(handler=_gcp_preflight)

    whoami = actions.add_parser(
        "whoami", help="your gcloud account, the suffix of your resources' names and the address the firewall lets in",
    )
    whoami.add_argument("--project", help="Google Cloud project id (default: gcloud's configured project)")
    whoami.add_argument("--student", help="use this suffix instead of the one derived from your account")
    whoami.add_argument("--teacher-ip", help=f"the teacher's address (default: ${TEACHER_IP_VARIABLE})")
    shown = whoami.add_mutually_exclusive_group()
    shown.add_argument("--suffix", action="store_true", help="print the suffix alone (for NAME=$(...))")
    shown.add_argument("--source-range", action="store_true",
                       help="print the firewall's source ranges alone: your public IP/32, and the teacher's")
    whoami.set_defaults(handler=_gcp_whoami)

    api_key = actions.add_parser(
        "api-key",
        help="make your API key once (32 random characters) in .workshop-deploy/api-key, readable by you only",
    )
    api_key.set_defaults(handler=_gcp_api_key)


def _samples(args: argparse.Namespace) -> int:
    from workshop.samples import write_samples

    for path in write_samples(Path(args.directory), shapes=args.shapes):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workshop", description="Deploy a YOLO model: from notebook to cloud VM.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the back-end API (FastAPI + uvicorn)")
    serve.add_argument("--host", help="address to listen on (default: WORKSHOP_HOST or 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port to listen on (default: WORKSHOP_PORT or 8000)")
    serve.set_defaults(handler=_serve)

    ui = commands.add_parser("ui", help="run the Streamlit front-end")
    ui.add_argument("--host", help="address to listen on (default: WORKSHOP_UI_HOST or 0.0.0.0)")
    ui.add_argument("--port", type=int, help="port to listen on (default: WORKSHOP_UI_PORT or 8501)")
    ui.add_argument("--backend-url", help="back-end URL (default: WORKSHOP_BACKEND_URL or http://localhost:8000)")
    ui.set_defaults(handler=_ui)

    predict = commands.add_parser("predict", help="send images to a running back-end and print the detections")
    predict.add_argument("images", nargs="+", help="image files")
    predict.add_argument(
        "--url", help="back-end URL (default: WORKSHOP_BACKEND_URL, else http://localhost:8000)"
    )
    predict.add_argument("--model", help="model name (default: the server's default)")
    predict.add_argument("--confidence", type=float, help="minimum confidence, 0-1")
    predict.add_argument("--iou", type=float, help="non-maximum suppression IoU threshold, 0-1")
    predict.add_argument("--image-size", type=int, help="inference size in pixels")
    predict.add_argument("--api-key", help="API key, when the server requires one")
    predict.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for an answer")
    predict.add_argument("--json", action="store_true", help="print the raw JSON answer")
    predict.add_argument("--save", help="also write the image with its boxes drawn to this file")
    predict.set_defaults(handler=_predict)

    train = commands.add_parser("train-demo", help="train the bundled 'shapes' detector from scratch")
    train.add_argument("--epochs", type=int, default=35)
    train.add_argument("--images", type=int, default=800, help="training images to generate")
    train.add_argument("--heldout", type=int, default=300, help="fresh images to measure mAP on")
    train.add_argument("--image-size", type=int, default=320)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--output", help="weights file to write (default: the package's bundled weights)")
    train.set_defaults(handler=_train_demo)

    preload = commands.add_parser("preload", help="download/load models now so their weights are cached")
    preload.add_argument("models", nargs="+", help="model names, e.g. shapes yolo26n")
    preload.add_argument(
        "--allow-missing", action="store_true", help="skip (exit 0) models that cannot be had, e.g. offline"
    )
    preload.set_defaults(handler=_preload)

    export = commands.add_parser("export", help="export models for the onnx/openvino engines (cached in the weights folder)")
    export.add_argument("models", nargs="+", help="model names, e.g. shapes")
    export.add_argument("--engines", nargs="+", choices=["onnx", "openvino"], default=["onnx", "openvino"])
    export.add_argument("--image-size", type=int, help="input size of the export (default: the model's training size)")
    export.add_argument("--force", action="store_true", help="export again even when a matching export is cached")
    export.add_argument(
        "--allow-missing", action="store_true", help="skip (exit 0) models whose weights cannot be had, e.g. offline"
    )
    export.set_defaults(handler=_export)

    bench = commands.add_parser("bench", help="benchmark the engines and the API on this machine (docs/benchmarks.md)")
    bench.add_argument("--models", nargs="+", default=["shapes", "yolo26n"],
                       help="models to measure; public ones (yolo26n) are built untrained from their YAML (offline)")
    bench.add_argument("--engines", nargs="+", choices=["pytorch", "onnx", "openvino"],
                       default=["pytorch", "onnx", "openvino"])
    bench.add_argument("--clients", nargs="+", type=int, default=[1, 4, 8, 16], help="concurrent clients, multipart")
    bench.add_argument("--base64-clients", nargs="*", type=int, default=[1, 8], help="concurrent clients, base64 JSON")
    bench.add_argument("--seconds", type=float, default=5.0, help="duration of each load level and floor")
    bench.add_argument("--rounds", type=int, default=3,
                       help="paired rounds (floor, 1 client, 8 clients) behind the goals; 0 for none")
    bench.add_argument("--containers", nargs="*", default=[], help="image tags whose cold start to measure")
    bench.add_argument("--output", default="docs/benchmarks.md")
    bench.set_defaults(handler=_bench)

    images = commands.add_parser(
        "bench-images", help="measure the images of a baseline commit and of this one, side by side (docs/benchmarks.md)"
    )
    images.add_argument("--baseline", default="main", help="git ref of the baseline, today's images (default: main)")
    images.add_argument("--candidate", default="HEAD", help="git ref measured against it (default: HEAD)")
    images.add_argument("--runs", type=_positive_int, default=3, help="starts timed per figure, the median kept")
    images.add_argument("--cpu-torch-wheel", type=Path,
                        help="a CPU build of PyTorch (wheel file) for the codespace-like venv whose disk is measured")
    images.add_argument("--docker-lock", type=Path, help="a lock file to hold while using a shared Docker engine")
    images.add_argument("--output", default="docs/benchmarks.md", help="the file whose '## Images' section is written")
    images.set_defaults(handler=_bench_images)

    loadtest = commands.add_parser(
        "loadtest", help="load-test a back-end with Locust and plot latency and throughput against users",
    )
    loadtest.add_argument("url", help="the back-end's address, e.g. http://localhost:8000")
    loadtest.add_argument(
        "--users", type=_positive_int, default=4, help="simulated users without --steps (default: %(default)s)",
    )
    loadtest.add_argument(
        "--duration", type=_positive_int,
        help="seconds each step lasts (default: 15; 3 in the notebooks' fast mode, WORKSHOP_NOTEBOOK_FAST=1)",
    )
    loadtest.add_argument("--steps", type=_user_counts, help="one run per user count, e.g. 1,2,4,8 (default: --users)")
    loadtest.add_argument("--spawn-rate", type=float, help="users started per second (default: all at once)")
    loadtest.add_argument("--api-key", help="the server's API key (default: WORKSHOP_API_KEY, if set)")
    loadtest.add_argument(
        "--output", default="loadtest-results", help="folder for the CSV, the JSON and the plot (default: %(default)s)",
    )
    loadtest.set_defaults(handler=_loadtest)

    health = commands.add_parser("healthcheck", help="exit 0 if a URL answers 200 (for container health checks)")
    health.add_argument("url", nargs="?", default="http://127.0.0.1:8000/ready")
    health.add_argument("--timeout", type=float, default=4.0)
    health.set_defaults(handler=_healthcheck)

    check = commands.add_parser(
        "check", help="grade a deployment of the back-end (or a class's, --roster) against the workshop's contract"
    )
    check.add_argument("url", nargs="?", help="the back-end's address, e.g. http://localhost:8000 or http://IP:8000")
    check.add_argument("--api-key", help="the server's API key; the check then also expects a 401 without it")
    check.add_argument("--roster", help="grade a class instead: a CSV file with the columns name,url,key")
    check.add_argument("--output", help="with --roster: the results' CSV file (default: ROSTER-results.csv beside it)")
    check.add_argument("--workers", type=int, help="with --roster: how many to check at once (default: 8, at most 32)")
    check.add_argument("--timeout", type=float, help="seconds one request may wait for its answer (default: 30)")
    check.add_argument("--max-latency", type=float, help="seconds one prediction may take to pass (default: 2)")
    check.add_argument("--json", action="store_true", help="print the results as JSON")
    check.set_defaults(handler=_check)

    _add_gcp_commands(commands)

    samples = commands.add_parser("samples", help="write sample images (shapes and photos) to a folder")
    samples.add_argument("directory")
    samples.add_argument("--shapes", type=int, default=3, help="how many shapes pictures")
    samples.set_defaults(handler=_samples)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)
