"""Run the whole benchmark: engines in process, the API under load, the naive peer, cold starts; then the report."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workshop.bench.agreement import Agreement, compare_engines
from workshop.bench.coldstart import container_cold_start, process_cold_start
from workshop.bench.floor import FloorWorker
from workshop.bench.load import Encoding, PreparedRequest, prepare_request, run_load
from workshop.bench.peer import PeerResults, measure_against_peer
from workshop.bench.stats import LatencySummary
from workshop.engines import ENGINE_NAMES, EngineName
from workshop.imaging import encode_image
from workshop.registry import PUBLIC_MODEL_PATTERN
from workshop.services import start_backend

#: Public-size stand-in: YOLO26n, the online default, built from its YAML (80 classes, 640 px), since
#: weights cannot be downloaded offline. Any public name given to the benchmark is built the same way.
PUBLIC_SIZE_MODEL = "yolo26n"


@dataclass
class BenchConfig:
    """What one benchmark run measures; the defaults are the full run behind docs/benchmarks.md."""

    models: list[str] = field(default_factory=lambda: ["shapes", PUBLIC_SIZE_MODEL])
    #: Measure the default `workshop serve` against the original lab's back-end (workshop.minimal_backend).
    peer: bool = True
    engines: list[EngineName] = field(default_factory=lambda: list(ENGINE_NAMES))
    clients: list[int] = field(default_factory=lambda: [1, 4, 8, 16])
    base64_clients: list[int] = field(default_factory=lambda: [1, 8])
    seconds: float = 5.0  # per load level, and for each in-process floor
    # Floor, 1 client and 8 clients measured in alternation, half as long each, this many times:
    # the goals use the median ratio, since on a shared VM the CPU's speed drifts within a run.
    goal_rounds: int = 3
    containers: list[str] = field(default_factory=list)  # image tags whose cold start is measured
    cold_start_runs: int = 3  # each cold start is the median of this many (one start is one sample)
    work_dir: Path | None = None


@dataclass(frozen=True)
class PairedRound:
    """The figures the goals compare, measured one after the other within a few seconds."""

    floor: LatencySummary
    one_client: LatencySummary
    eight_clients: LatencySummary

    @property
    def latency_ratio(self) -> float:
        """API p50 at 1 client ÷ floor p50 (goal: at most 1.05)."""
        return self.one_client.p50_ms / self.floor.p50_ms

    @property
    def throughput_ratio(self) -> float:
        """API throughput at 8 clients ÷ floor throughput (goal: at least 1.0)."""
        return self.eight_clients.throughput / self.floor.throughput


@dataclass
class ModelResults:
    """Everything measured for one model."""

    model: str
    image_description: str
    floors: dict[str, dict] = field(default_factory=dict)  # engine -> floor worker's JSON, before the API
    rounds: dict[str, list[PairedRound]] = field(default_factory=dict)  # engine -> the goals' paired rounds
    api: dict[str, list[tuple[Encoding, int, LatencySummary]]] = field(default_factory=dict)
    agreement: list[Agreement] = field(default_factory=list)
    peer: PeerResults | None = None  # the default server against the naive peer, when measured


@dataclass
class BenchResults:
    config: BenchConfig
    models: list[ModelResults]
    process_cold_starts: dict[str, float]
    container_cold_starts: dict[str, float | str]
    seconds: float
    command: str
    #: Per container image: its total bytes, and its layers, largest first, as (bytes, the instruction that made it).
    container_layers: dict[str, tuple[int, list[tuple[int, str]]]] = field(default_factory=dict)


def _model_inputs(model: str, folder: Path) -> tuple[Path, list[Path], str]:
    """The timed picture, the agreement pictures, and a description, for ``model``."""
    from workshop.samples import photo, shapes_sample

    folder.mkdir(parents=True, exist_ok=True)
    if PUBLIC_MODEL_PATTERN.match(model):
        pictures = []
        for name in ("cat", "astronaut", "coffee"):
            path = folder / f"{name}.png"
            photo(name).save(path)
            pictures.append(path)
        return pictures[0], pictures, "the sample cat photo (scikit-image's Chelsea), 451×300"
    timed = folder / "shapes_timed.png"
    shapes_sample(seed=3, width=640, height=480).image.save(timed)
    pictures = []
    for seed in range(100, 110):
        path = folder / f"shapes_{seed}.png"
        shapes_sample(seed=seed).image.save(path)
        pictures.append(path)
    return timed, pictures, "a generated shapes picture, 640×480"


def _python(args: Sequence[str], env: dict[str, str], timeout: float = 900) -> str:
    result = subprocess.run(
        [sys.executable, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def run_benchmark(config: BenchConfig, progress: Callable[[str], None] = print, command: str = "") -> BenchResults:
    """Measure everything ``config`` asks for, on this machine, in this one run."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="workshop-bench-", dir=config.work_dir) as scratch:
        work = Path(scratch)
        env = {
            "WORKSHOP_WEIGHTS_DIR": str(work / "weights"),
            "WORKSHOP_OFFLINE": os.environ.get("WORKSHOP_OFFLINE", "1"),
            "WORKSHOP_PUBLIC_MODELS": "",
            "YOLO_CONFIG_DIR": str(work / "ultralytics"),
        }
        for public in filter(PUBLIC_MODEL_PATTERN.match, config.models):
            # Where a download would put it, so that both the back-end and the peer find it.
            weights = work / "weights" / f"{public}.pt"
            weights.parent.mkdir(parents=True, exist_ok=True)
            progress(f"building {public} from {public}.yaml (untrained, offline)")
            _python(["-c", f"from workshop.yolo_env import import_yolo; import_yolo()('{public}.yaml').save({str(weights)!r})"], env)

        exported = [engine for engine in config.engines if engine != "pytorch"]
        results = []
        for model in config.models:
            timed, pictures, description = _model_inputs(model, work / "images" / model)
            outcome = ModelResults(model=model, image_description=description)
            if exported:
                progress(f"{model}: exporting for {', '.join(exported)}")
                _python(["-m", "workshop", "export", model, "--engines", *exported], env)
            for engine in config.engines:
                progress(f"{model} on {engine}: in-process floor ({config.seconds:g} s)")
                output = work / f"floor-{model}-{engine}.json"
                arguments = ["--model", model, "--image", str(timed), "--seconds", str(config.seconds),
                             "--output", str(output), "--agreement-images", *map(str, pictures)]
                log = work / "logs" / f"floor-{model}-{engine}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                with FloorWorker(arguments, {**env, "WORKSHOP_ENGINE": engine}, log) as floor:
                    outcome.floors[engine] = {**json.loads(output.read_text()), "raw_output_file": str(output.with_suffix(".npy"))}
                    outcome.api[engine], outcome.rounds[engine] = _measure_api(
                        config, model, engine, timed.read_bytes(), env, work, progress, floor
                    )
            outcome.agreement = compare_engines(outcome.floors)
            if config.peer:
                outcome.peer = measure_against_peer(config, model, timed.read_bytes(), env, work, progress)
            results.append(outcome)

        bundled = work / "images" / "cold.png"
        from workshop.samples import shapes_sample

        bundled.write_bytes(encode_image(shapes_sample(seed=3).image))
        cold = {}
        for engine in [*config.engines, "auto"]:  # auto: the default, on what it chose above (cached)
            progress(f"cold start of `workshop serve` on {engine}")
            cold[engine] = round(statistics.median(
                process_cold_start(bundled.read_bytes(), {**env, "WORKSHOP_ENGINE": engine})
                for _ in range(config.cold_start_runs)
            ), 2)
        containers: dict[str, float | str] = {}
        for tag in config.containers:
            progress(f"cold start of the container {tag}")
            try:
                containers[tag] = round(statistics.median(
                    container_cold_start(tag, bundled.read_bytes()) for _ in range(config.cold_start_runs)
                ), 2)
            except (subprocess.CalledProcessError, TimeoutError, OSError) as error:
                containers[tag] = f"not measured: {error}".splitlines()[0]
        layers = {tag: image_layers(tag) for tag in config.containers if not isinstance(containers[tag], str)}
    return BenchResults(config, results, cold, containers, round(time.perf_counter() - started, 1), command, layers)


def image_layers(tag: str) -> tuple[int, list[tuple[int, str]]]:
    """An image's total bytes and its layers (bytes, the Dockerfile instruction), largest first, from Docker itself."""
    total = int(subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Size}}", tag], capture_output=True, text=True, check=True
    ).stdout.strip())
    history = subprocess.run(
        ["docker", "history", "--no-trunc", "--human=false", "--format", "{{.Size}}\t{{.CreatedBy}}", tag],
        capture_output=True, text=True, check=True,
    ).stdout
    layers = []
    for line in history.splitlines():
        size, _, created_by = line.partition("\t")
        if size.isdigit() and int(size) > 0:
            layers.append((int(size), created_by.strip()))
    return total, sorted(layers, reverse=True)


def _measure_api(
    config: BenchConfig, model: str, engine: EngineName, image: bytes, env: dict[str, str], work: Path,
    progress: Callable[[str], None], floor: FloorWorker,
) -> tuple[list[tuple[Encoding, int, LatencySummary]], list[PairedRound]]:
    """Every load level once, then the goals' paired rounds against ``floor``."""
    levels: list[tuple[Encoding, int]] = [("multipart", clients) for clients in config.clients]
    levels += [("base64", clients) for clients in config.base64_clients]
    measured = []
    server_env = {**env, "WORKSHOP_ENGINE": engine, "WORKSHOP_DEFAULT_MODEL": model}
    with start_backend(env=server_env, log_dir=work / "logs" / f"{model}-{engine}") as server:
        for encoding, clients in levels:
            request = prepare_request(image, encoding)
            run_load(server.url, request, clients=min(clients, 2), seconds=min(1.0, config.seconds / 2))  # settle
            summary = run_load(server.url, request, clients=clients, seconds=config.seconds)
            progress(
                f"  API {encoding:9} {clients:2} clients: p50 {summary.p50_ms:7.1f} ms, {summary.throughput:6.1f} req/s, "
                f"{summary.errors} errors"
            )
            measured.append((encoding, clients, summary))
        rounds = _paired_rounds(config, server.url, prepare_request(image, "multipart"), floor, progress)
    return measured, rounds


def _paired_rounds(
    config: BenchConfig, url: str, request: PreparedRequest, floor: FloorWorker, progress: Callable[[str], None]
) -> list[PairedRound]:
    """Floor, 1 client and 8 clients, one after the other; the order flips every round so that a drift cancels out."""
    seconds = config.seconds / 2
    measure: dict[str, Callable[[], LatencySummary]] = {
        "floor": lambda: floor.time(seconds),
        "one_client": lambda: run_load(url, request, clients=1, seconds=seconds),
        "eight_clients": lambda: run_load(url, request, clients=8, seconds=seconds),
    }
    rounds = []
    for number in range(config.goal_rounds):
        order = list(measure) if number % 2 == 0 else list(reversed(measure))
        paired = PairedRound(**{name: measure[name]() for name in order})
        progress(
            f"  round {number + 1}: API p50 ÷ floor p50 {paired.latency_ratio:.3f}, "
            f"8 clients ÷ floor throughput {paired.throughput_ratio:.3f}"
        )
        rounds.append(paired)
    return rounds
