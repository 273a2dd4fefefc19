"""Write the benchmark's results as markdown: machine, goals, engines, agreement, API under load, the peer, cold starts."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
from importlib import metadata
from pathlib import Path

from workshop.bench.peer import FIRST_PREDICTION_STARTS, PeerResults
from workshop.bench.runner import BenchResults, ModelResults
from workshop.bench.stats import LatencySummary
from workshop.engines.auto import cpu_name
from workshop.registry import PUBLIC_MODEL_PATTERN

#: The issue's goals, as ratios measured in one run on one machine.
API_OVERHEAD_GOAL = 1.05  # API p50 at 1 client <= this x raw in-process p50
THROUGHPUT_GOAL = 1.0  # API throughput at 8 clients >= this x raw sequential throughput
TAIL_GOAL = 3.0  # p99 <= this x p50 at 8 clients
ENGINE_SPEEDUP_GOAL = 1.5  # fastest exported engine >= this x PyTorch throughput
PEER_THROUGHPUT_GOAL = 1.5  # default `workshop serve` req/s at 8 clients >= this x the naive peer's
PEER_LATENCY_GOAL = 0.7  # default `workshop serve` p50 at 1 client <= this x the naive peer's
FIRST_PREDICTION_GOAL = 1.2  # default server's first prediction after /ready <= this x its steady p50
BACKEND_COLD_START_GOAL = 1.5  # seconds from `docker run` of the back-end image to its first 200 on /predict
BACKEND_SIZE_GOAL = 450e6  # bytes of the back-end image (unpacked)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_description() -> list[str]:
    """CPU, cores, memory and the versions that decide the figures."""
    cpu = cpu_name()
    try:
        memory_kib = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        memory = f"{memory_kib / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = "unknown"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = ", ".join(
        f"{name} {_version(name)}" for name in ("torch", "onnxruntime", "openvino", "ultralytics", "fastapi", "uvicorn")
    )
    return [
        f"- Machine: {cpu}, {cpus} CPUs, {memory} RAM, {platform.system()} {platform.release()}, no GPU used",
        f"- Python {platform.python_version()}; {versions}",
    ]


def _ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}×" if reference else "n/a"


def _table(*columns: str) -> list[str]:
    """A markdown table's header and separator rows."""
    return ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _level(results: ModelResults, engine: str, encoding: str, clients: int) -> LatencySummary | None:
    for measured_encoding, measured_clients, summary in results.api.get(engine, []):
        if measured_encoding == encoding and measured_clients == clients:
            return summary
    return None


def _floor(results: ModelResults, engine: str) -> dict:
    return results.floors[engine]["timing"]


def goal_ratios(results: ModelResults, engine: str) -> tuple[list[float], list[float]]:
    """Per paired round: API p50 at 1 client ÷ floor p50, and throughput at 8 clients ÷ floor throughput.

    Without paired rounds, the one pass over every load level gives a single ratio of each.
    """
    if results.rounds.get(engine):
        return (
            [paired.latency_ratio for paired in results.rounds[engine]],
            [paired.throughput_ratio for paired in results.rounds[engine]],
        )
    floor, one, eight = _floor(results, engine), _level(results, engine, "multipart", 1), _level(results, engine, "multipart", 8)
    return (
        [one.p50_ms / floor["p50_ms"]] if one else [],
        [eight.throughput / floor["throughput"]] if eight else [],
    )


def _median_of(ratios: list[float]) -> str:
    if len(ratios) == 1:
        return f"{ratios[0]:.3f}×"
    return f"{statistics.median(ratios):.3f}× (median of {len(ratios)} rounds: {', '.join(f'{r:.3f}' for r in ratios)})"


def goal_rows(results: list[ModelResults]) -> list[str]:
    rows = _table("Goal", "Model", "Engine", "Measured", "Target", "Met")
    for outcome in results:
        for engine in outcome.floors:
            latency, throughput = goal_ratios(outcome, engine)
            if latency:
                rows.append(f"| API p50 at 1 client ÷ raw p50 | {outcome.model} | {engine} | {_median_of(latency)} "
                            f"| ≤ {API_OVERHEAD_GOAL} | {_met(statistics.median(latency) <= API_OVERHEAD_GOAL)} |")
            if throughput:
                rows.append(f"| 8 clients: throughput ÷ raw sequential | {outcome.model} | {engine} | {_median_of(throughput)} "
                            f"| ≥ {THROUGHPUT_GOAL} | {_met(statistics.median(throughput) >= THROUGHPUT_GOAL)} |")
            eight = _level(outcome, engine, "multipart", 8)
            if eight:
                tail = eight.p99_ms / eight.p50_ms
                rows.append(f"| 8 clients: p99 ÷ p50, errors | {outcome.model} | {engine} | {tail:.2f}×, {eight.errors} errors "
                            f"| ≤ {TAIL_GOAL}, 0 | {_met(tail <= TAIL_GOAL and eight.errors == 0)} |")
        if "pytorch" in outcome.floors and len(outcome.floors) > 1:
            best = max((e for e in outcome.floors if e != "pytorch"), key=lambda e: _floor(outcome, e)["throughput"])
            speedup = _floor(outcome, best)["throughput"] / _floor(outcome, "pytorch")["throughput"]
            agreement = next((a for a in outcome.agreement if a.engine == best), None)
            agrees = agreement is not None and agreement.agrees
            rows.append(f"| fastest engine ÷ PyTorch throughput, same answers | {outcome.model} | {best} | {speedup:.2f}×, "
                        f"{'agrees' if agrees else 'DISAGREES'} | ≥ {ENGINE_SPEEDUP_GOAL} | {_met(speedup >= ENGINE_SPEEDUP_GOAL and agrees)} |")
        if outcome.peer and outcome.peer.rounds:
            rows.extend(peer_goal_rows(outcome.peer))
    return rows


def peer_goal_rows(peer: PeerResults) -> list[str]:
    """The default `workshop serve` against the original lab's back-end: ratios of one run, median of its rounds."""
    engine = f"default ({peer.default_engine}) vs peer"
    throughput = [paired.throughput_ratio for paired in peer.rounds]
    latency = [paired.latency_ratio for paired in peer.rounds]
    steady = statistics.median(paired.default_one.p50_ms for paired in peer.rounds)
    peer_steady = statistics.median(paired.peer_one.p50_ms for paired in peer.rounds)
    first = peer.default_first_ms / steady
    errors = sum(paired.default_eight.errors + paired.default_one.errors for paired in peer.rounds)
    return [
        f"| default server ÷ peer: req/s at 8 clients | {peer.model} | {engine} | {_median_of(throughput)} "
        f"| ≥ {PEER_THROUGHPUT_GOAL} | {_met(statistics.median(throughput) >= PEER_THROUGHPUT_GOAL and errors == 0)} |",
        f"| default server ÷ peer: p50 at 1 client | {peer.model} | {engine} | {_median_of(latency)} "
        f"| ≤ {PEER_LATENCY_GOAL} | {_met(statistics.median(latency) <= PEER_LATENCY_GOAL)} |",
        f"| default server: first prediction after /ready ÷ steady p50 | {peer.model} | {peer.default_engine} "
        f"| {first:.2f}× ({peer.default_first_ms:.1f} ms, median of {FIRST_PREDICTION_STARTS} starts, ÷ {steady:.1f} ms) "
        f"| ≤ {FIRST_PREDICTION_GOAL} "
        f"| {_met(first <= FIRST_PREDICTION_GOAL)} |",
        f"| peer: first prediction ÷ steady p50 (it loads the model then) | {peer.model} | pytorch "
        f"| {peer.peer_first_ms / peer_steady:.1f}× ({peer.peer_first_ms:.0f} ms ÷ {peer_steady:.1f} ms) | — | — |",
    ]


def container_goal_rows(results: BenchResults) -> list[str]:
    """Each back-end image measured (``--containers``): its start to the first answered prediction, and its size.

    ``workshop bench-images`` measures the images against a baseline, with the build and push figures.
    """
    rows = []
    for tag, value in results.container_cold_starts.items():
        if not isinstance(value, str):
            rows.append(f"| image: `docker run` → first 200 on /predict | shapes | `{tag}` | {value:.2f} s "
                        f"| ≤ {BACKEND_COLD_START_GOAL} s | {_met(value <= BACKEND_COLD_START_GOAL)} |")
        if tag in results.container_layers:
            total = results.container_layers[tag][0]
            rows.append(f"| image: size | — | `{tag}` | {total / 1e6:.0f} MB | ≤ {BACKEND_SIZE_GOAL / 1e6:.0f} MB "
                        f"| {_met(total <= BACKEND_SIZE_GOAL)} |")
    return rows


def peer_rows(results: list[ModelResults]) -> list[str]:
    """Every round of the default server against the peer."""
    rows = _table("Model", "Round", "Server", "1 client p50 ms", "1 client req/s", "8 clients p50 ms",
                  "8 clients p99 ms", "8 clients req/s", "Errors")
    for outcome in results:
        if not outcome.peer:
            continue
        for number, paired in enumerate(outcome.peer.rounds, start=1):
            for server, one, eight in (
                (f"default ({outcome.peer.default_engine})", paired.default_one, paired.default_eight),
                ("peer (minimal_backend, pytorch)", paired.peer_one, paired.peer_eight),
            ):
                rows.append(_row(
                    outcome.model, number, server, f"{one.p50_ms:.1f}", f"{one.throughput:.1f}", f"{eight.p50_ms:.1f}",
                    f"{eight.p99_ms:.1f}", f"{eight.throughput:.1f}", one.errors + eight.errors,
                ))
    return rows


def layer_instruction(created_by: str) -> str:
    """A layer's Dockerfile instruction as `docker history` records it, without the shell and build-argument prefix."""
    if not created_by:
        return "(the base image)"
    _, shell, command = created_by.partition("/bin/sh -c ")
    if not shell:
        command = created_by
    elif command.startswith("#(nop)"):
        command = command.removeprefix("#(nop)")
    else:
        command = f"RUN {command}"
    command = " ".join(command.replace("|", "\\|").split())
    return f"`{command[:140]}{'…' if len(command) > 140 else ''}`"


def layer_rows(results: BenchResults) -> list[str]:
    """Each measured image's layers, largest first (`docker history`), with the image's total."""
    lines = []
    for tag, (total, layers) in results.container_layers.items():
        lines += [f"`{tag}`: {total / 1e6:.0f} MB in all.", "", *_table("Layer MB", "Made by")]
        for size, created_by in layers[:12]:
            lines.append(_row(f"{size / 1e6:.1f}", layer_instruction(created_by)))
        lines.append("")
    return lines


def engine_rows(results: list[ModelResults]) -> list[str]:
    rows = _table("Model", "Engine", "Input", "p50 ms", "p95 ms", "p99 ms", "img/s", "× PyTorch", "Load s")
    for outcome in results:
        reference = outcome.floors.get("pytorch", {}).get("timing", {}).get("throughput", 0)
        for engine, floor in outcome.floors.items():
            timing = floor["timing"]
            shape = f"{floor['image_size']}, padded to ×32"
            rows.append(_row(
                outcome.model, engine, shape, f"{timing['p50_ms']:.1f}", f"{timing['p95_ms']:.1f}",
                f"{timing['p99_ms']:.1f}", f"{timing['throughput']:.1f}", _ratio(timing["throughput"], reference),
                f"{floor['load_seconds']:.2f}",
            ))
    return rows


def agreement_rows(results: list[ModelResults]) -> list[str]:
    rows = _table(
        "Model", "Engine", "Boxes matched (PyTorch / engine)", "Max Δ confidence", "Min IoU", "Max Δ raw output (relative)"
    )
    for outcome in results:
        for agreement in outcome.agreement:
            boxes = f"{agreement.matched} of {agreement.reference_boxes} / {agreement.engine_boxes}"
            rows.append(_row(
                outcome.model, agreement.engine, boxes, f"{agreement.max_confidence_delta:.4f}",
                f"{agreement.min_iou:.3f}", f"{agreement.raw_output_relative_delta:.1e}",
            ))
    return rows


def api_rows(results: list[ModelResults]) -> list[str]:
    rows = _table(
        "Model", "Engine", "Body", "Clients", "Requests", "Errors", "p50 ms", "p95 ms", "p99 ms", "req/s",
        "p50 ÷ raw p50", "req/s ÷ raw img/s", "p99 ÷ p50",
    )
    for outcome in results:
        for engine, levels in outcome.api.items():
            floor = _floor(outcome, engine)
            for encoding, clients, summary in levels:
                rows.append(_row(
                    outcome.model, engine, encoding, clients, summary.count, summary.errors, f"{summary.p50_ms:.1f}",
                    f"{summary.p95_ms:.1f}", f"{summary.p99_ms:.1f}", f"{summary.throughput:.1f}",
                    _ratio(summary.p50_ms, floor["p50_ms"]), _ratio(summary.throughput, floor["throughput"]),
                    _ratio(summary.p99_ms, summary.p50_ms),
                ))
    return rows


def render(results: BenchResults) -> str:
    """The whole report as markdown."""
    config = results.config
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{results.command or 'workshop bench'}` on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, in one run of {results.seconds:.0f} s; "
        "every ratio compares figures from that run on that machine.",
        "",
        *machine_description(),
        f"- Each load level ran {config.seconds:g} s; each in-process floor ran {config.seconds:g} s in a fresh process "
        "that stayed up for the goals' rounds.",
        *([f"- Goals: the floor, the API at 1 client and the API at 8 clients were measured one after the other, "
           f"{config.seconds / 2:g} s each, {config.goal_rounds} times (the order flips every round); each goal is the "
           "median of those rounds' ratios. On a shared 2-vCPU VM the CPU's speed drifts by up to ±20 % within a run, "
           "so a ratio of figures taken minutes apart, as in the tables below, says less than these paired rounds."]
          if config.goal_rounds else
          ["- Goals: no paired rounds (`--rounds 0`); each goal compares figures from the tables below, taken minutes "
           "apart, which on a shared VM can differ by ±20 % from drift alone."]),
        "",
        "Pictures: " + "; ".join(f"`{m.model}`: {m.image_description}" for m in results.models) + ". "
        + "".join(f"`{m.model}` is built from its YAML (80 classes, 640 px, untrained: its weights cannot be downloaded "
                  "here), so it costs what the downloaded model costs and finds nothing. "
                  for m in results.models if PUBLIC_MODEL_PATTERN.match(m.model)),
        "",
        "## Goals",
        "",
        *goal_rows(results.models),
        *container_goal_rows(results),
        "",
        "## Engines, in process",
        "",
        "The floor: `predict_image_bytes` (decode + inference + boxes, what a route does) called back to back in one "
        "process per engine. img/s is sequential throughput.",
        "",
        *engine_rows(results.models),
        "",
        "## Same answers?",
        "",
        "Each exported engine against PyTorch, as each serves the same pictures: a box matches when the class is equal, "
        "IoU ≥ 0.9 and confidence within 0.02. Raw output: the largest difference in the network's output tensor on "
        "the timed picture, relative to its largest value.",
        "",
        *agreement_rows(results.models),
        "",
        "## The API under load",
        "",
        "A real `workshop serve` (uvicorn) on 127.0.0.1, one per model and engine; N clients post the timed picture "
        "back to back over keep-alive connections (the load generator runs on the same 2 CPUs as the server). "
        "multipart is `/predict/upload`, base64 is `/predict`.",
        "",
        *api_rows(results.models),
        "",
        *(["## The default server against the original lab's back-end",
           "",
           "The peer is `workshop.minimal_backend`, the original lab's design that notebook 02 has students write "
           "(picture decoded per request, model loaded on first use, plain `model(image)` on PyTorch). Both served by "
           "uvicorn with one worker on 127.0.0.1, both sent the same base64 JSON body (`POST /predict`, same model, "
           "same picture); the default server runs with no engine named (`auto`). Each round measures 1 client then "
           "8 clients on each, the order flipped every round. First predictions: the default server's right after "
           "`/ready` (median of fresh starts), the peer's right after `/health` (it loads the model then). "
           + "; ".join(f"`{m.model}`: default server ready {m.peer.default_ready_seconds:.1f} s after launch, on "
                       f"{m.peer.default_engine}" for m in results.models if m.peer) + ".",
           "",
           *peer_rows(results.models),
           ""] if any(m.peer for m in results.models) else []),
        "## Cold start",
        "",
        "From launching the server to the first `200` from `/predict/upload` (bundled model, weights on disk, "
        f"exports already cached); the median of {config.cold_start_runs} starts.",
        "",
        *_table("Server", "Seconds"),
        *[f"| `workshop serve`, {engine} engine{' (the default)' if engine == 'auto' else ''} | {seconds:.2f} |"
          for engine, seconds in results.process_cold_starts.items()],
        *[f"| container `{tag}` | {value if isinstance(value, str) else f'{value:.2f}'} |"
          for tag, value in results.container_cold_starts.items()],
        "",
        *(["## Image sizes, layer by layer",
           "",
           "From `docker history` of each measured image (layers of 0 bytes left out, at most 12, largest first).",
           "",
           *layer_rows(results)] if results.container_layers else []),
    ]
    return "\n".join(lines)
