"""The floor: raw in-process predictions, timed in a process of their own.

Run as ``python -m workshop.bench.floor`` by the benchmark, once per engine, so
that each engine is timed in a fresh process (PyTorch's idle OpenMP threads
would otherwise slow the other runtimes down). The engine, weights folder and
models come from the usual ``WORKSHOP_*`` variables. It times exactly what a
route does — :func:`workshop.inference.predict_image_bytes`, decoding included —
and also writes what the agreement check needs: detections on a few pictures
and the network's raw output on the first one.

With ``--rounds`` the process then stays up and times the picture again each
time the benchmark asks (:class:`FloorWorker`), so that the floor and the API
can be measured in alternation, a few seconds apart, on a machine whose speed drifts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from workshop.engines.letterbox import letterbox
from workshop.imaging import decode_image
from workshop.inference import predict_image_bytes
from workshop.registry import ModelRegistry
from workshop.settings import get_settings
from workshop.bench.stats import LatencySummary


def time_predictions(registry: ModelRegistry, model: str, image: bytes, seconds: float, min_calls: int = 5) -> LatencySummary:
    """Call the route's prediction function back to back for ``seconds`` (at least ``min_calls`` times)."""
    params = registry.default_parameters()
    latencies: list[float] = []
    started = time.perf_counter()
    while len(latencies) < min_calls or time.perf_counter() - started < seconds:
        call = time.perf_counter()
        predict_image_bytes(registry, image, model, params)
        latencies.append(time.perf_counter() - call)
    return LatencySummary.of(latencies, time.perf_counter() - started)


def raw_network_output(engine: object, image: bytes, size: int) -> np.ndarray:
    """The network's output before any post-processing, for one picture letterboxed to ``size`` (stride 32)."""
    batch, _ = letterbox(decode_image(image, max_bytes=1 << 30, max_pixels=1 << 30).image, size)
    if engine.name != "pytorch":  # type: ignore[attr-defined]
        return engine.run(batch)  # type: ignore[attr-defined]
    import torch

    network = engine.yolo.model.float().eval()  # type: ignore[attr-defined]
    # YOLO26 has two heads: Ultralytics predicts (and exports) with the one-to-many head by default,
    # so compare that one, not the end-to-end head a bare forward pass would run.
    end2end = getattr(network, "end2end", False)
    network.end2end = False
    try:
        with torch.no_grad():
            output = network(torch.from_numpy(batch))
    finally:
        network.end2end = end2end
    return (output[0] if isinstance(output, (list, tuple)) else output).numpy()


#: What the worker prints before each line meant for the benchmark (libraries may print too).
_ROUND_MARK = "floor-round "


class FloorWorker:
    """The benchmark's handle on a floor process started with ``--rounds``: time the picture again on demand."""

    def __init__(self, arguments: list[str], env: dict[str, str], log: Path) -> None:
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workshop.bench.floor", *arguments, "--rounds"],
            env={**os.environ, **env}, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
        )
        self._read(limit=900)  # the first line says the first timing is done and its JSON written

    def _read(self, limit: float) -> str:
        """The worker's next line for the benchmark; the worker is killed if it takes more than ``limit`` seconds."""
        assert self.process.stdout is not None
        watchdog = threading.Timer(limit, self.process.kill)
        watchdog.start()
        try:
            for line in self.process.stdout:
                if line.startswith(_ROUND_MARK):
                    return line[len(_ROUND_MARK):]
        finally:
            watchdog.cancel()
        self.close()
        raise RuntimeError(f"the floor worker stopped (exit {self.process.returncode}); see {self._log.name}")

    def time(self, seconds: float) -> LatencySummary:
        """Back-to-back predictions for ``seconds``, timed now."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{seconds}\n")
        self.process.stdin.flush()
        return LatencySummary(**json.loads(self._read(limit=seconds * 10 + 60)))

    def close(self) -> None:
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()  # end of input: the worker exits
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()

    def __enter__(self) -> FloorWorker:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--image", required=True, type=Path, help="the picture that is timed")
    parser.add_argument("--agreement-images", nargs="*", type=Path, default=[])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--output", required=True, type=Path, help="JSON results (and a .npy beside it)")
    parser.add_argument("--rounds", action="store_true", help="then time again for each number of seconds read on stdin")
    args = parser.parse_args()

    registry = ModelRegistry(get_settings())
    started = time.perf_counter()
    loaded = registry.warm_up(args.model)
    load_seconds = time.perf_counter() - started
    image = args.image.read_bytes()
    timing = time_predictions(registry, args.model, image, args.seconds)

    params = registry.default_parameters()
    detections = {}
    for path in args.agreement_images:
        picture = decode_image(path.read_bytes(), max_bytes=1 << 30, max_pixels=1 << 30).image
        detections[path.name] = [d.model_dump() for d in loaded.predict(picture, params)]
    size = loaded.engine.image_size
    np.save(args.output.with_suffix(".npy"), raw_network_output(loaded.engine, image, size))
    args.output.write_text(
        json.dumps(
            {
                "engine": loaded.engine.name,
                "load_seconds": round(load_seconds, 2),
                "image_size": size,
                "timing": asdict(timing),
                "detections": detections,
            }
        )
    )
    if args.rounds:
        print(_ROUND_MARK + "ready", flush=True)
        for line in sys.stdin:
            again = time_predictions(registry, args.model, image, float(line))
            print(_ROUND_MARK + json.dumps(asdict(again)), flush=True)


if __name__ == "__main__":
    main()
