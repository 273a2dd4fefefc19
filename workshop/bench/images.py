"""What a student builds, pushes and pulls: the images of a baseline and of this checkout, side by side, in one run.

``workshop bench-images`` takes two commits of this repository (by default ``main`` as the baseline and
``HEAD``), exports each into a folder of its own (``git archive``: a clean clone's files, nothing in
``weights/``), and on this machine's Docker engine, for each in turn:

* builds both images with ``docker compose build --no-cache`` (no layer cache, packages from the index,
  the base image local), then again after a one-line change of the code, one service at a time;
* builds the front-end with its video decoder too (``--build-arg VIDEO=true``), where its Dockerfile makes the
  decoder a choice (the baseline's always had it);
* brings the stack up (``up -d``) until the front-end answers and the back-end's ``/ready`` says 200;
* starts the back-end alone (``docker run``) until its first 200 on ``/predict/upload``;
* pushes the back-end to Debian's ``docker-registry`` on loopback and adds up what the registry received;
* lists each image's layers.

Then the disk a codespace-like run of the track takes: the clone, a virtual environment of the ``dev``
extra with a CPU build of PyTorch and pip's cache of it (really installed, see :func:`codespace_disk`),
the weights and exports, and the unique layers of the track's images. The results go to the section
``## Images`` of ``docs/benchmarks.md``, the rest of which ``workshop bench`` writes.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import requests

from workshop.bench.coldstart import container_cold_start
from workshop.bench.report import layer_instruction
from workshop.bench.runner import image_layers
from workshop.containers import REPO_ROOT, ComposeStack, run
from workshop.imaging import encode_image
from workshop.samples import shapes_sample
from workshop.services import free_port

#: The heading of the section this benchmark owns in docs/benchmarks.md (to the end of the file).
SECTION = "## Images"
SERVICES = ("backend", "frontend")
REGISTRY_BINARY = Path("/usr/bin/docker-registry")
LOADBALANCER = "deploy-ml-workshop/loadbalancer:bench"
PIP_CACHE = "pip's cache"
#: PyTorch, and CUDA's packages that PyPI's PyTorch requires and its CPU build does not (nvidia-ml-py, which
#: Ultralytics asks for, is a small binding to the GPU driver, not part of CUDA).
CUDA_OR_TORCH = re.compile(r"(torch|torchvision|triton|cuda-|nvidia-(?!ml-py))\b", re.IGNORECASE)

#: The goals (issue "Small images, fast builds"), in bytes and seconds.
GOALS = {
    "backend_bytes": 450e6,
    "frontend_bytes": 400e6,
    "pushed_bytes": 150e6,
    "cold_build_s": 120.0,
    "rebuild_s": 15.0,
    "up_s": 15.0,
    "first_predict_s": 1.5,
    "disk_bytes": 10e9,
}


@dataclass
class ImageBenchConfig:
    baseline: str = "main"
    candidate: str = "HEAD"
    runs: int = 3  # starts measured per figure (the median is kept)
    base_image: str = field(default_factory=lambda: os.environ.get("WORKSHOP_DOCKER_BASE_IMAGE", "python:3.12-slim"))
    #: The baseline's PyTorch index (its Dockerfile installs PyTorch); empty: PyPI's.
    torch_index_url: str = field(default_factory=lambda: os.environ.get("WORKSHOP_TORCH_INDEX_URL", ""))
    #: A CPU build of PyTorch (a wheel file) for the codespace-like venv; None: the disk is not measured.
    cpu_torch_wheel: Path | None = None
    #: A lock file to hold while using Docker (an engine shared with others); None: no lock.
    docker_lock: Path | None = None
    work_dir: Path | None = None


@dataclass
class ImageSet:
    """One commit's images and what was measured on them."""

    label: str
    ref: str
    commit: str
    tag: str
    cold_build_s: float = 0.0
    rebuild_s: dict[str, list[float]] = field(default_factory=dict)
    up_s: list[float] = field(default_factory=list)
    first_predict_s: list[float] = field(default_factory=list)
    layers: dict[str, tuple[int, list[tuple[int, str]]]] = field(default_factory=dict)
    pushed_bytes: int = 0
    push_s: float = 0.0
    #: The front-end built with its video decoder (VIDEO=true); None where the Dockerfile has no such choice.
    video_layers: tuple[int, list[tuple[int, str]]] | None = None

    def image(self, service: str) -> str:
        return f"deploy-ml-workshop/{service}:{self.tag}"

    @property
    def video_image(self) -> str:
        return f"deploy-ml-workshop/frontend:{self.tag}-video"

    def size(self, service: str) -> int:
        return self.layers[service][0]


@dataclass
class DiskUse:
    """Bytes on disk of each part of a codespace-like run of the track, and how each was had."""

    parts: dict[str, int] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.parts.values())


@dataclass
class ImageBenchResults:
    config: ImageBenchConfig
    sets: list[ImageSet]
    disk: DiskUse | None
    seconds: float
    command: str
    #: The local base image's bytes (``config.base_image``), which every image above counts.
    base_bytes: int = 0


def _git(*args: str) -> str:
    return run(["git", *args], cwd=REPO_ROOT).strip()


def checkout(ref: str, directory: Path) -> str:
    """The files of ``ref`` in ``directory`` (as a clone has them: nothing ignored); return its commit."""
    directory.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", ref], cwd=REPO_ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive.stdout, check=True)
    return _git("rev-parse", "--short", ref)


def _stack(image_set: ImageSet, directory: Path, config: ImageBenchConfig) -> ComposeStack:
    return ComposeStack(
        project=f"workshopbench{image_set.tag.replace('-', '')}", backend_port=free_port(), frontend_port=free_port(),
        files=(str(directory / "docker-compose.yml"),), image_tag=image_set.tag, base_image=config.base_image,
        torch_index_url=config.torch_index_url,
    )


def _compose(stack: ComposeStack, *args: str, timeout: float = 3600) -> float:
    """Run ``compose ARGS`` on ``stack``'s files; return the seconds it took."""
    files = [argument for name in stack.files for argument in ("-f", name)]
    started = time.perf_counter()
    run([*stack.compose, *files, "-p", stack.project, *args], env=stack.env, timeout=timeout)
    return time.perf_counter() - started


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def compose_up_seconds(stack: ComposeStack, timeout: float = 300) -> float:
    """Seconds from ``compose up -d`` to the front-end answering and the back-end's ``/ready`` saying 200."""
    started = time.perf_counter()
    _compose(stack, "up", "-d", timeout=timeout)
    waiting = {f"{stack.backend_url}/ready", f"{stack.frontend_url}/_stcore/health"}
    while waiting:
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"no answer from {', '.join(sorted(waiting))} within {timeout:g} s")
        waiting = {url for url in waiting if not _answers(url)}
        if waiting:
            time.sleep(0.1)
    return time.perf_counter() - started


def one_line_change(directory: Path, number: int) -> None:
    """A one-line change of the code both images copy: what a student's edit costs the next build.

    The line is new to this run: the same line as an earlier run's would find that run's layers in Docker's
    cache, and the "rebuild" would build nothing.
    """
    settings = directory / "workshop" / "settings.py"
    line = f"# one-line change {number} ({uuid.uuid4().hex}): the benchmark's rebuild\n"
    settings.write_text(settings.read_text() + line)


class LoopbackRegistry:
    """Debian's docker-registry on 127.0.0.1, storing in ``folder``: what a push really sends, added up."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.host = f"127.0.0.1:{free_port()}"
        config = {"version": "0.1", "storage": {"filesystem": {"rootdirectory": str(folder / "storage")}},
                  "http": {"addr": self.host, "secret": "loopback-benchmark-only"}, "log": {"level": "warn"}}
        (folder / "config.yml").write_text(json.dumps(config))  # JSON is YAML
        self.process = subprocess.Popen([str(REGISTRY_BINARY), "serve", str(folder / "config.yml")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not _answers(f"http://{self.host}/v2/"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Debian's docker-registry did not start on loopback")
            time.sleep(0.2)

    def push(self, image: str, name: str) -> tuple[int, float]:
        """Push ``image`` as ``name``; return the bytes the registry holds for it (compressed layers and config)."""
        target = f"{self.host}/{name}"
        run(["docker", "tag", image, target])
        try:
            started = time.perf_counter()
            run(["docker", "push", target], timeout=3600)
            seconds = time.perf_counter() - started
        finally:
            subprocess.run(["docker", "rmi", target], capture_output=True)
        repository, _, tag = name.partition(":")
        manifest = requests.get(f"http://{self.host}/v2/{repository}/manifests/{tag}", timeout=30, headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json"}).json()
        return manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"]), seconds

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def measure_images(
    image_set: ImageSet, directory: Path, config: ImageBenchConfig, registry: LoopbackRegistry | None,
    progress: Callable[[str], None],
) -> None:
    """Every figure of one commit's images, into ``image_set``."""
    stack = _stack(image_set, directory, config)
    progress(f"{image_set.label}: docker compose build --no-cache")
    image_set.cold_build_s = _compose(stack, "build", "--no-cache")
    progress(f"  {image_set.cold_build_s:.1f} s")
    for service in SERVICES:
        image_set.layers[service] = image_layers(image_set.image(service))
    try:
        for _ in range(config.runs):
            image_set.up_s.append(compose_up_seconds(stack))
            progress(f"  compose up -> front-end answers, back-end ready: {image_set.up_s[-1]:.1f} s")
            _compose(stack, "down", "--volumes", "--timeout", "20")
    finally:
        _compose(stack, "down", "--volumes", "--timeout", "20")
    picture = encode_image(shapes_sample(seed=3).image)
    for _ in range(config.runs):
        image_set.first_predict_s.append(container_cold_start(image_set.image("backend"), picture))
        progress(f"  docker run -> first 200 on /predict: {image_set.first_predict_s[-1]:.2f} s")
    if registry is not None:
        progress(f"{image_set.label}: push of the back-end to a registry on loopback")
        image_set.pushed_bytes, image_set.push_s = registry.push(image_set.image("backend"), f"bench/backend:{image_set.tag}")
        progress(f"  {image_set.pushed_bytes / 1e6:.0f} MB in {image_set.push_s:.1f} s")
    for run_number in range(config.runs):
        one_line_change(directory, run_number)
        for service in SERVICES:
            seconds = _compose(stack, "build", service)
            image_set.rebuild_s.setdefault(service, []).append(seconds)
            progress(f"  rebuild of {service} after a one-line change: {seconds:.1f} s")
    if has_video_choice(directory):
        progress(f"{image_set.label}: the front-end with its video decoder (--build-arg VIDEO=true)")
        run(["docker", "build", "-q", "-f", str(directory / "frontend" / "Dockerfile"), "-t", image_set.video_image,
             "--build-arg", f"BASE_IMAGE={config.base_image}", "--build-arg", "VIDEO=true", str(directory)],
            timeout=3600)
        image_set.video_layers = image_layers(image_set.video_image)
        progress(f"  {_mb(image_set.video_layers[0])}")


def has_video_choice(directory: Path) -> bool:
    """Whether the front-end's Dockerfile in ``directory`` makes the video decoder a build argument (VIDEO)."""
    return re.search(r"^ARG VIDEO\b", (directory / "frontend" / "Dockerfile").read_text(), re.MULTILINE) is not None


def images_bytes(images: list[str], base_image: str) -> int:
    """Bytes on disk of ``images`` together, each built ``FROM base_image``: the base counted once."""
    def size(image: str) -> int:
        return int(run(["docker", "image", "inspect", "--format", "{{.Size}}", image]))

    base = size(base_image)
    return base + sum(size(image) - base for image in images)


def _du(path: Path) -> int:
    return int(run(["du", "-s", "--block-size=1", str(path)]).split()[0])


def python_disk(directory: Path, config: ImageBenchConfig, work: Path, progress: Callable[[str], None]) -> DiskUse:
    """The clone, the venv and pip's cache of a codespace-like set-up (no Docker involved).

    The virtual environment is really installed, as scripts/setup.sh dev does (the dev extra, pinned, pip's
    cache kept), with ``config.cpu_torch_wheel`` as PyTorch: the CPU index cannot be reached here, so the CPU
    build given (and the torchvision of its minor version, from PyPI) stands in for the pinned one.
    """
    disk = DiskUse()
    clone = work / "clone"
    run(["git", "clone", "--quiet", "--no-local", str(REPO_ROOT), str(clone)])
    disk.parts["the clone"], disk.notes["the clone"] = _du(clone), "`git clone` of this repository, `.git` included"
    shutil.rmtree(clone)
    if config.cpu_torch_wheel is None:
        return disk
    wheel = Path(config.cpu_torch_wheel)
    torch_version = wheel.name.split("-")[1]  # e.g. 2.13.0+cpu
    minor = int(torch_version.split(".")[1])
    constraints = [line for line in (directory / "requirements" / "constraints.txt").read_text().splitlines()
                   if not CUDA_OR_TORCH.match(line)]
    constraints += [f"torch=={torch_version}", f"torchvision==0.{minor + 15}.*"]  # torch 2.N goes with 0.(N+15)
    (work / "constraints.txt").write_text("\n".join(constraints) + "\n")
    venv, cache = work / "venv", work / "pip-cache"
    progress(f"codespace-like venv: the dev extra, with {wheel.name}")
    run([sys.executable, "-m", "venv", str(venv)])
    report = work / "pip-report.json"
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--cache-dir", str(cache), "--find-links",
         str(wheel.parent), "-c", str(work / "constraints.txt"), "--report", str(report), "-e", f"{directory}[dev]"],
        timeout=3600)
    installed = run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"])
    if any(CUDA_OR_TORCH.match(line) and not line.lower().startswith("torch") for line in installed.splitlines()):
        raise RuntimeError("CUDA's packages came in with PyTorch: the venv is not a CPU one")
    disk.parts["the venv"] = _du(venv)
    disk.notes["the venv"] = (f"`.[dev]` really installed with the pins, PyTorch {torch_version} from the CPU "
                              "index's wheel (the pinned version's CPU build cannot be reached here)")
    disk.parts[PIP_CACHE], disk.notes[PIP_CACHE] = downloaded_bytes(report), (
        "the wheels that install took, added up from pip's report: what its cache keeps once it has "
        "downloaded them (here some came from a local mirror, which it does not cache)")
    progress(f"  venv {_mb(disk.parts['the venv'])}, pip's cache {_mb(disk.parts[PIP_CACHE])}")
    shutil.rmtree(venv)
    shutil.rmtree(cache, ignore_errors=True)
    return disk


def downloaded_bytes(report: Path) -> int:
    """The bytes of the wheels a ``pip install --report`` took: what pip's cache holds once it downloaded them.

    Local files (a mirror on this machine, the CPU wheel) by their size; the index's by their Content-Length.
    """
    total = 0
    for item in json.loads(report.read_text())["install"]:
        url = item.get("download_info", {}).get("url", "")
        if url.startswith("file://") and Path(unquote(url.removeprefix("file://"))).is_file():
            total += Path(unquote(url.removeprefix("file://"))).stat().st_size
        elif url.startswith("https://"):
            total += int(requests.head(url, timeout=30, allow_redirects=True).headers.get("Content-Length", 0))
    return total


def _online_weights(directory: Path, work: Path, progress: Callable[[str], None]) -> int:
    """yolo26n as a codespace has it: in the venv's weights folder (both exports) and in weights/ (ONNX, for the
    image); return their bytes. The weights are built from the YAML (untrained, the download's size): no download.
    """
    progress("yolo26n from its YAML, exported as scripts/setup.sh and the venv's server do")
    env = {**os.environ, "WORKSHOP_OFFLINE": "1"}
    folders = ((directory / "weights", ["onnx"]), (work / "venv-weights", ["onnx", "openvino"]))
    for folder, engines in folders:
        folder.mkdir(parents=True, exist_ok=True)
        run([sys.executable, "-c", "from workshop.yolo_env import import_yolo; import sys; "
             "import_yolo()('yolo26n.yaml').save(sys.argv[1])", str(folder / "yolo26n.pt")], env=env)
        run([sys.executable, "-m", "workshop", "export", "yolo26n", "--engines", *engines],
            env={**env, "WORKSHOP_WEIGHTS_DIR": str(folder)}, timeout=900)
    return sum(_du(folder) for folder, _ in folders)


def remove_left_behind(before: set[str]) -> None:
    """Remove the untagged images this run left (earlier builds of a tag, the legacy builder's stages).

    Only those made during the run from this project's Dockerfiles: others' images are not touched.
    """
    for image in set(run(["docker", "images", "-a", "-q", "--no-trunc", "--filter", "dangling=true"]).split()) - before:
        history = subprocess.run(["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image],
                                 capture_output=True, text=True).stdout
        if "extras.py pyproject.toml" in history or "/package/workshop" in history or "nginx" in history:
            subprocess.run(["docker", "rmi", image], capture_output=True)


@contextlib.contextmanager
def docker_lock(path: Path | None) -> Iterator[None]:
    """Hold ``path`` locked (flock) while using a Docker engine that others share; no lock when None."""
    if path is None:
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_image_benchmark(
    config: ImageBenchConfig, progress: Callable[[str], None] = print, command: str = ""
) -> ImageBenchResults:
    """Measure the baseline's images, then this checkout's, in this one run; and the track's disk."""
    started = time.perf_counter()
    sets = [ImageSet("baseline", config.baseline, "", "bench-baseline"),
            ImageSet("this branch", config.candidate, "", "bench-new")]
    with tempfile.TemporaryDirectory(prefix="workshop-bench-images-", dir=config.work_dir) as scratch:
        work = Path(scratch)
        directories: dict[str, Path] = {}
        for image_set in sets:
            directories[image_set.tag] = work / image_set.tag
            image_set.commit = checkout(image_set.ref, directories[image_set.tag])
        candidate = sets[-1]
        disk = python_disk(directories[candidate.tag], config, work, progress)
        with docker_lock(config.docker_lock):
            before = set(run(["docker", "images", "-a", "-q", "--no-trunc"]).split())
            base_bytes = int(run(["docker", "image", "inspect", "--format", "{{.Size}}", config.base_image]))
            (work / "registry").mkdir()
            registry = LoopbackRegistry(work / "registry") if REGISTRY_BINARY.exists() else None
            try:
                for image_set in sets:
                    measure_images(image_set, directories[image_set.tag], config, registry, progress)
                disk.parts["weights and exports"] = _online_weights(directories[candidate.tag], work, progress)
                disk.notes["weights and exports"] = ("yolo26n.pt and its exports, in `weights/` (ONNX, for the image) "
                                                     "and in the venv's weights folder (ONNX and OpenVINO)")
                run(["docker", "build", "-q", "-t", LOADBALANCER, "--build-arg", f"BASE_IMAGE={config.base_image}",
                     str(directories[candidate.tag] / "loadbalancer")], timeout=1800)
                disk.parts["the images"] = images_bytes(
                    [candidate.image(service) for service in SERVICES] + [LOADBALANCER], config.base_image)
                disk.notes["the images"] = ("back-end, front-end and notebook 07's load balancer, with their base "
                                            "counted once (notebook 04's exercise image shares the front-end's layers)")
            finally:
                if registry is not None:
                    registry.stop()
                for image in [s.image(service) for s in sets for service in SERVICES] + [LOADBALANCER] + [
                        s.video_image for s in sets]:
                    subprocess.run(["docker", "rmi", "-f", image], capture_output=True)
                remove_left_behind(before)
    return ImageBenchResults(config, sets, disk, round(time.perf_counter() - started, 1), command, base_bytes)


# ------------------------------------------------------------------------------------------------ the report
def _mb(size: float) -> str:
    return f"{size / 1e6:.0f} MB" if size < 1e9 else f"{size / 1e9:.2f} GB"


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _median(values: list[float]) -> float:
    return statistics.median(values)


def goal_rows(results: ImageBenchResults) -> list[str]:
    """The issue's table: today (the baseline, measured in this run), this branch, the goal, met or not."""
    old, new = results.sets
    disk = results.disk

    def seconds(values: list[float], digits: int = 1) -> str:
        return f"{_median(values):.{digits}f} s (median of {len(values)}: " + ", ".join(f"{v:.{digits}f}" for v in values) + ")"

    def with_video(image_set: ImageSet) -> str:
        if image_set.video_layers is None:  # no VIDEO argument: the decoder is in the image built by default
            return f"{_mb(image_set.size('frontend'))} (built with it by default)"
        return _mb(image_set.video_layers[0])

    new_video = new.video_layers[0] if new.video_layers else new.size("frontend")
    rows = [
        ("back-end image, unpacked", _mb(old.size("backend")), _mb(new.size("backend")),
         f"≤ {_mb(GOALS['backend_bytes'])}", new.size("backend") <= GOALS["backend_bytes"]),
        ("front-end image, unpacked (as built by default)", _mb(old.size("frontend")), _mb(new.size("frontend")),
         f"≤ {_mb(GOALS['frontend_bytes'])}", new.size("frontend") <= GOALS["frontend_bytes"]),
        ("front-end image with the video decoder (`--build-arg VIDEO=true`)", with_video(old), with_video(new),
         f"≤ {_mb(GOALS['frontend_bytes'])}", new_video <= GOALS["frontend_bytes"]),
        ("bytes pushed to the registry for the back-end (compressed layers)",
         f"{_mb(old.pushed_bytes)} ({old.push_s:.0f} s)" if old.pushed_bytes else "not measured",
         f"{_mb(new.pushed_bytes)} ({new.push_s:.0f} s)" if new.pushed_bytes else "not measured",
         f"≤ {_mb(GOALS['pushed_bytes'])}", 0 < new.pushed_bytes <= GOALS["pushed_bytes"]),
        ("cold build of both images (`compose build --no-cache`)", f"{old.cold_build_s:.0f} s",
         f"{new.cold_build_s:.0f} s", f"≤ {GOALS['cold_build_s']:.0f} s", new.cold_build_s <= GOALS["cold_build_s"]),
        ("rebuild after a one-line code change (back-end; front-end)",
         "; ".join(seconds(old.rebuild_s[s]) for s in SERVICES), "; ".join(seconds(new.rebuild_s[s]) for s in SERVICES),
         f"≤ {GOALS['rebuild_s']:.0f} s each", max(_median(new.rebuild_s[s]) for s in SERVICES) <= GOALS["rebuild_s"]),
        ("`compose up` → front-end answers and back-end `/ready`", seconds(old.up_s), seconds(new.up_s),
         f"≤ {GOALS['up_s']:.0f} s", _median(new.up_s) <= GOALS["up_s"]),
        ("`docker run` → first 200 on `/predict` (back-end)", seconds(old.first_predict_s, 2),
         seconds(new.first_predict_s, 2), f"≤ {GOALS['first_predict_s']} s",
         _median(new.first_predict_s) <= GOALS["first_predict_s"]),
    ]
    lines = ["| Figure | Today (baseline) | This branch | Goal | Met |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {figure} | {today} | {ours} | {goal} | {_met(ok)} |" for figure, today, ours, goal, ok in rows]
    if disk is not None and "the venv" in disk.parts:
        lines.append(f"| the track's peak disk use, codespace-like (clone, venv with CPU PyTorch, pip's cache, "
                     f"weights, images) | — | {_mb(disk.total)} | ≤ {_mb(GOALS['disk_bytes'])} | "
                     f"{_met(disk.total <= GOALS['disk_bytes'])} |")
    else:
        lines.append("| the track's peak disk use, codespace-like | — | not measured (no CPU build of PyTorch given: "
                     "`--cpu-torch-wheel`) | ≤ 10 GB | — |")
    return lines


def render_section(results: ImageBenchResults) -> str:
    """The section ``## Images`` of docs/benchmarks.md."""
    old, new = results.sets
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    base = f" ({_mb(results.base_bytes)}, counted in every image)" if results.base_bytes else ""
    lines = [
        SECTION,
        "",
        f"Generated by `{results.command or 'workshop bench-images'}` on {when}, in one run of {results.seconds:.0f} s: "
        f"the baseline is `{old.ref}` ({old.commit}), today's images; this branch is `{new.ref}` ({new.commit}). "
        "Each was exported from git as a fresh clone has it (nothing in `weights/`: the offline world, the bundled "
        f"model), and built here on the local base image `{results.config.base_image}`{base} with packages from the index "
        f"(the baseline's PyTorch from {results.config.torch_index_url or 'PyPI, with CUDA: the CPU index cannot be reached here'}). "
        "Sizes are Docker's (`docker image inspect`, unpacked); bytes pushed are what Debian's `docker-registry` on "
        "loopback received for the back-end (its compressed layers and config, from the manifest); `compose up` is "
        "timed to the front-end's `/_stcore/health` and the back-end's `/ready` both answering 200 (the front-end "
        "starts once the back-end's health check passes); the first prediction is `container_cold_start`'s, as in "
        "the cold-start table above. The machine is shared by other work: timings are this run's. (Image figures "
        "above this section come from `workshop bench --containers`, on the images of the day it ran.)",
        "",
        *goal_rows(results),
        "",
    ]
    if results.disk is not None:
        lines += ["### The track's disk, codespace-like", "",
                  "What a codespace holds once the whole track has run (nothing is removed on the way, so this is "
                  "its peak).", "", "| Part | Size | How |", "| --- | --- | --- |"]
        lines += [f"| {part} | {_mb(size)} | {results.disk.notes[part]} |" for part, size in results.disk.parts.items()]
        lines += [f"| **total** | **{_mb(results.disk.total)}** | |", ""]
    lines += ["### Image sizes, layer by layer", "",
              "From `docker history` (layers of 0 bytes left out, largest first).", ""]
    for image_set in results.sets:
        images = [(f"`{service}`", image_set.layers[service]) for service in SERVICES]
        if image_set.video_layers is not None:
            images.append(("`frontend` with `VIDEO=true`", image_set.video_layers))
        for name, (total, layers) in images:
            lines += [f"{name} ({image_set.label}, {image_set.commit}): {_mb(total)} in all.", "",
                      "| Layer MB | Made by |", "| --- | --- |"]
            lines += [f"| {size / 1e6:.1f} | {layer_instruction(created_by)} |" for size, created_by in layers[:12]]
            lines.append("")
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Put ``section`` in place of the file's own ``## Images`` section (to its end), or after the rest."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    kept = text.split(f"\n{SECTION}\n", 1)[0].rstrip("\n")
    path.write_text(f"{kept}\n\n{section.rstrip()}\n")
