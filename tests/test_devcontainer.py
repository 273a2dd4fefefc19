"""The devcontainer reproduces the lab's codespace as GitHub builds it in 2026.

What can be checked here is checked for real: the file against the dev container spec's keys,
the features' pins (a major each), the set-up command (the one CI runs first, from a fresh clone) and the venv it makes, the PATH a codespace terminal gets,
the README's JupyterLab command (started, asked for the notebooks through a forwarded host
name, stopped). What cannot run here is stood in for, and the test's name says so: Google's apt
repository by a signed repository on loopback, in a real build of `.devcontainer/Dockerfile`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import json5
import pytest
import requests

from workshop.links import in_codespace, public_url
from workshop.services import free_port, start_process

from support import missing_tool  # tests/ is on sys.path under pytest

ROOT = Path(__file__).resolve().parents[1]
DEVCONTAINER_DIR = ROOT / ".devcontainer"
DEVCONTAINER = DEVCONTAINER_DIR / "devcontainer.json"
DOCKERFILE = DEVCONTAINER_DIR / "Dockerfile"

# The top-level keys of devcontainer.json for an image or Dockerfile container, from the spec's
# schema (https://github.com/devcontainers/spec, schemas/devContainer.base.schema.json).
SPEC_KEYS = {
    # devContainerCommon
    "$schema", "name", "features", "overrideFeatureInstallOrder", "secrets", "forwardPorts",
    "portsAttributes", "otherPortsAttributes", "updateRemoteUserUID", "containerEnv", "containerUser",
    "mounts", "init", "privileged", "capAdd", "securityOpt", "remoteEnv", "remoteUser",
    "initializeCommand", "onCreateCommand", "updateContentCommand", "postCreateCommand",
    "postStartCommand", "postAttachCommand", "waitFor", "userEnvProbe", "hostRequirements",
    "customizations", "additionalProperties",
    # nonComposeBase, image or Dockerfile
    "appPort", "runArgs", "shutdownAction", "overrideCommand", "workspaceFolder", "workspaceMount",
    "image", "build", "dockerFile", "context",
}
# The lifecycle commands waitFor may name, in the order they run (the spec's enum).
WAIT_FOR = ["initializeCommand", "onCreateCommand", "updateContentCommand", "postCreateCommand", "postStartCommand"]

# Every feature the codespace may use, each one read and found maintained, with the page of its changelog.
# Which of its majors is current lives on ghcr.io, which this machine cannot reach: that is not checked here
# (a constant written in this file would only agree with itself). When a new major is out, read its changelog,
# then move the pin in .devcontainer/devcontainer.json, whose comment says why that major.
VETTED_FEATURES = {
    "ghcr.io/devcontainers/features/docker-in-docker": "https://github.com/devcontainers/features/tree/main/src/docker-in-docker",
}
#: A pin on a major: ``:4``. Not ``:latest`` (a new major would break a class mid-course), not ``:4.0.0`` (no fixes).
MAJOR_PIN = re.compile(r"[1-9]\d*")

# `apt-key` as a command, not as part of a file name such as Google's key, apt-key.gpg.
APT_KEY_COMMAND = re.compile(r"(?<![\w./-])apt-key(?![\w.-])")

README_JUPYTER = re.compile(r"^(\.venv/bin/jupyter lab .*?)\s*(?:#.*)?$", re.MULTILINE)


@pytest.fixture(scope="module")
def config() -> dict:
    """devcontainer.json, read as the spec reads it: JSON with comments (json5 reads JSONC)."""
    return json5.loads(DEVCONTAINER.read_text())


def _setup_command(config: dict) -> str:
    """The command that creates the venv: the one the UI waits for."""
    return config[config["waitFor"]]


def _codespace_path(config: dict) -> str:
    """The PATH a codespace terminal gets: remoteEnv's PATH with the spec's variables filled in."""
    return (config["remoteEnv"]["PATH"]
            .replace("${containerWorkspaceFolder}", str(ROOT))
            .replace("${containerEnv:PATH}", os.environ["PATH"]))


def test_every_key_is_one_the_spec_defines(config: dict) -> None:
    unknown = set(config) - SPEC_KEYS
    assert not unknown, f"not dev container keys (a typo is silently ignored by the tools): {sorted(unknown)}"
    assert config["build"]["dockerfile"] == "Dockerfile" and DOCKERFILE.exists()
    assert "image" not in config, "image and build.dockerfile exclude each other"
    assert config["waitFor"] in WAIT_FOR
    for key, value in config["hostRequirements"].items():
        assert key in {"cpus", "memory", "storage", "gpu"}
        if key in {"memory", "storage"}:
            assert re.fullmatch(r"\d+([tgmk]b)?", value), f"hostRequirements.{key}={value!r}: the spec wants e.g. '8gb'"


def test_features_are_vetted_and_pinned_to_a_major(config: dict) -> None:
    assert config["features"], "the codespace needs the docker-in-docker feature (notebooks 04, 05 and 07)"
    for reference in config["features"]:
        feature, _, version = reference.rpartition(":")
        assert feature in VETTED_FEATURES, (
            f"{reference.rpartition(':')[0] or reference} is not in VETTED_FEATURES of {Path(__file__).name}: check "
            "that it is maintained (no third-party feature abandoned since 2023, as the old google-cloud-cli one "
            "was), then add it with its changelog's page"
        )
        assert MAJOR_PIN.fullmatch(version), (
            f"{reference}: pin the feature to a major ({feature}:N), whose fixes a codespace then gets, rather than "
            f"to '{version}' (read {VETTED_FEATURES[feature]} for the current major)"
        )


def test_nothing_in_the_devcontainer_uses_apt_key() -> None:
    # The pattern must find the command and leave Google's key file alone, or this test proves nothing.
    assert APT_KEY_COMMAND.search("curl -fsSL https://example.org/key | apt-key add -")
    assert not APT_KEY_COMMAND.search("curl https://packages.cloud.google.com/apt/doc/apt-key.gpg")
    for path in sorted(DEVCONTAINER_DIR.rglob("*")):
        if path.is_file():
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if line.lstrip().startswith(("#", "//")):
                    continue  # a comment may say why apt-key is not used
                assert not APT_KEY_COMMAND.search(line), (
                    f"{path.relative_to(ROOT)}:{number} uses apt-key, which Debian 13 removed: "
                    "put the key in /usr/share/keyrings and name it with signed-by"
                )


def test_the_dockerfile_adds_google_apt_repository_with_its_own_keyring() -> None:
    text = DOCKERFILE.read_text()
    sources = re.findall(r'"(deb .*?)"', text)
    assert sources, "the Dockerfile no longer adds an apt repository: update this test"
    for source in sources:
        match = re.match(r"deb \[signed-by=(/usr/share/keyrings/[\w.-]+\.gpg)\] \S+ cloud-sdk main$", source)
        assert match, f"{source!r}: every repository needs its own keyring (signed-by)"
        assert f"gpg --dearmor -o {match.group(1)}" in text, "the keyring that signed-by names is never written"
    assert "google-cloud-cli" in text and "gcloud --version" in text


def test_the_dockerfile_installs_the_cloud_run_proxy_package_the_real_gcloud_names() -> None:
    """An apt-installed gcloud has its component manager off: `gcloud run services proxy` (the Cloud Run step's
    only way in) needs the package that the installed CLI's own component mapping names."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        if os.environ.get("CI"):
            pytest.fail("the real gcloud is needed in CI: it names the package")
        pytest.skip("gcloud is not installed")
    mapping = Path(gcloud).resolve().parents[1] / ".install" / "component_mapping.yaml"
    package = next(line.split(":", 1)[1].strip() for line in mapping.read_text().splitlines()
                   if line.startswith("cloud-run-proxy:"))
    install = next(line for line in DOCKERFILE.read_text().splitlines() if "apt-get install" in line
                   and "google-cloud-cli" in line)
    assert package in install.split(), f"the Dockerfile should install {package}"


def test_ports_are_forwarded_with_labels(config: dict) -> None:
    assert config["forwardPorts"] == [8000, 8501, 8888]
    for port in ("8000", "8501", "8888"):
        assert config["portsAttributes"][port]["label"]


def test_the_ui_waits_for_the_readme_setup_with_the_dev_extra(config: dict) -> None:
    # waitFor names the command that installs the venv, so VS Code connects (and the Python and
    # Jupyter extensions look for interpreters) only once .venv/bin/python exists.
    assert _setup_command(config) == "scripts/setup.sh dev"
    assert WAIT_FOR.index(config["waitFor"]) <= WAIT_FOR.index("updateContentCommand"), (
        "a set-up that runs after the UI connects lets students open notebooks on a half-installed venv"
    )
    assert not {"postCreateCommand", "postStartCommand"} & set(config), "a second set-up would not be waited for"
    assert "scripts/setup.sh" in (ROOT / "README.md").read_text()
    tomllib = pytest.importorskip("tomllib")
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    for needed in ("jupyterlab", "nbclient", "ipykernel"):
        assert any(re.match(rf"{needed}\b", requirement) for requirement in dev), f"the dev extra lacks {needed}"


def test_terminals_and_notebooks_find_the_venv_first(config: dict) -> None:
    """Stands in for a codespace terminal: remoteEnv's PATH, expanded as the spec says, finds the venv first."""
    settings = config["customizations"]["vscode"]["settings"]
    assert settings["python.defaultInterpreterPath"] == "${containerWorkspaceFolder}/.venv/bin/python"
    assert config["remoteEnv"]["PATH"].endswith(":${containerEnv:PATH}"), "the image's PATH must stay behind the venv"
    found = subprocess.run(
        ["bash", "-c", "command -v python jupyter workshop"], env={**os.environ, "PATH": _codespace_path(config)},
        capture_output=True, text=True, timeout=30,
    ).stdout.split()
    assert found == [str(ROOT / ".venv" / "bin" / name) for name in ("python", "jupyter", "workshop")]
    # The notebooks ask for the kernel "python3"; the venv's Jupyter serves it from the venv.
    kernels = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c",
         "from jupyter_client.kernelspec import find_kernel_specs; print(find_kernel_specs()['python3'])"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()
    assert Path(kernels).is_relative_to(ROOT / ".venv"), f"the notebooks' kernel python3 comes from {kernels}"
    notebooks = sorted((ROOT / "notebooks").rglob("*.ipynb"))
    assert len(notebooks) >= 32, "the track: 8 notebooks, in English and French, as solutions and student versions"
    for notebook in notebooks:
        assert json5.loads(notebook.read_text())["metadata"]["kernelspec"]["name"] == "python3", notebook.name


def test_the_codespaces_setup_is_the_command_the_test_command_runs_first(config: dict) -> None:
    """The codespace runs ``scripts/setup.sh dev``: the command ``scripts/test.sh`` (so CI, from a fresh clone and
    into a fresh venv) runs before any test. Its run in a fresh venv is CI's first step; running it a second time
    here would cost 2.5 minutes and 7 GB for nothing more."""
    assert _setup_command(config) == "scripts/setup.sh dev"
    assert re.search(r"^scripts/setup\.sh dev$", (ROOT / "scripts" / "test.sh").read_text(), re.MULTILINE)


@pytest.mark.slow
def test_the_venv_the_setup_made_has_what_the_codespace_uses() -> None:
    """The venv the suite runs in (in CI the one ``scripts/setup.sh dev`` just made): the servers, the notebooks'
    kernel and JupyterLab 4, which the codespace's window opens."""
    check = subprocess.run(
        [sys.executable, "-c",
         "import fastapi, streamlit, ultralytics, playwright, workshop.backend, jupyterlab, nbclient, ipykernel"],
        capture_output=True, text=True, timeout=300,
    )
    assert check.returncode == 0, check.stderr
    lab = subprocess.run([str(Path(sys.executable).parent / "jupyter"), "lab", "--version"],
                         capture_output=True, text=True, timeout=60)
    assert lab.returncode == 0 and re.match(r"4\.", lab.stdout), lab.stdout + lab.stderr


def _readme_jupyter_command() -> list[str]:
    commands = README_JUPYTER.findall((ROOT / "README.md").read_text())
    assert len(commands) == 1, f"the README should show one JupyterLab command, found {commands}"
    return shlex.split(commands[0])


def _start_jupyter(command: list[str], port: int, log_dir: Path):
    """Run the README's command on ``port`` (as root, which only CI is, with --allow-root)."""
    command = [str(ROOT / arg) if arg == ".venv/bin/jupyter" else arg for arg in command]
    command[command.index("--port") + 1] = str(port)
    if os.geteuid() == 0:
        command.append("--allow-root")
    service = start_process(f"jupyter-{port}", command, f"http://127.0.0.1:{port}", health_path="/api",
                            log_dir=log_dir, timeout=60)
    token = re.search(r"\?token=([0-9a-f]+)", service.log())
    assert token, f"JupyterLab printed no token URL:\n{service.log()[-2000:]}"
    return service, token.group(1)


@pytest.mark.slow
def test_readme_jupyterlab_command_serves_the_notebooks_through_a_forwarded_host(config: dict, tmp_path: Path) -> None:
    """Stands in for the codespace's forwarded URL: the proxy passes its own host name, not localhost."""
    command = _readme_jupyter_command()
    assert command[command.index("--port") + 1] == "8888" and 8888 in config["forwardPorts"]
    assert command[-1] == "notebooks/"
    forwarded = {"Host": "fluffy-space-train-x7-8888.app.github.dev"}
    port = free_port()
    service, token = _start_jupyter(command, port, tmp_path)
    with service:
        contents = f"http://127.0.0.1:{port}/api/contents"
        assert requests.get(contents, headers=forwarded, timeout=10).status_code == 403, "no token, no notebooks"
        answer = requests.get(contents, headers=forwarded | {"Authorization": f"token {token}"}, timeout=10)
        assert answer.status_code == 200, answer.text
        folders = {item["name"] for item in answer.json()["content"] if item["type"] == "directory"}
        assert {"en", "fr", "solutions"} <= folders, folders
        french = requests.get(f"{contents}/fr", headers=forwarded | {"Authorization": f"token {token}"}, timeout=10)
        names = {item["name"] for item in french.json()["content"]}
        assert {path.name for path in (ROOT / "notebooks" / "fr").glob("*.ipynb")} <= names and len(names) >= 8
    assert not service.running

    # Why the README says --ip 0.0.0.0: bound to localhost only, Jupyter refuses any other host name.
    local_only = [arg for i, arg in enumerate(command) if arg != "--ip" and command[i - 1] != "--ip"]
    port = free_port()
    service, token = _start_jupyter(local_only, port, tmp_path)
    with service:
        answer = requests.get(f"http://127.0.0.1:{port}/api/contents", timeout=10,
                              headers=forwarded | {"Authorization": f"token {token}"})
        assert answer.status_code == 403


@dataclass
class AptRepository:
    """Apt repositories on 127.0.0.1 laid out as packages.cloud.google.com/apt, with the server's access log."""

    url: str
    fingerprint: str
    log: Callable[[], str]

    def asked_for(self, path: str) -> bool:
        return f'"GET {path} HTTP/1.1" 200' in self.log()


def _gpg(home: Path, *args: str) -> str:
    return subprocess.run(["gpg", "--homedir", str(home), "--batch", "--quiet", *args],
                          capture_output=True, text=True, check=True, timeout=60).stdout


def _signing_key(home: Path, name: str) -> str:
    """A throw-away signing key in its own GnuPG home; returns its fingerprint."""
    home.mkdir(mode=0o700)
    _gpg(home, "--passphrase", "", "--quick-gen-key", f"{name} <{name}@example.invalid>", "ed25519", "sign", "never")
    return next(line.split(":")[9] for line in _gpg(home, "--with-colons", "--list-keys").splitlines()
                if line.startswith("fpr:"))


def _write_apt_repository(root: Path, served_key: Path, signing_key: Path, debs: list[Path], architecture: str) -> None:
    """``root``/apt: the public key Google serves, the suite ``cloud-sdk`` (InRelease signed), the packages."""
    apt = root / "apt"
    (apt / "doc").mkdir(parents=True)
    (apt / "doc" / "apt-key.gpg").write_text(_gpg(served_key, "--armor", "--export"))  # armoured, as Google's
    (apt / "pool").mkdir()
    packages = ""
    for deb in debs:
        shutil.copy(deb, apt / "pool" / deb.name)
        packages += subprocess.run(["dpkg-deb", "--field", str(deb)], capture_output=True, text=True,
                                   check=True).stdout
        data = deb.read_bytes()
        packages += (f"Filename: pool/{deb.name}\nSize: {len(data)}\n"
                     f"SHA256: {hashlib.sha256(data).hexdigest()}\n\n")
    index = f"main/binary-{architecture}/Packages"
    (apt / "dists" / "cloud-sdk" / index).parent.mkdir(parents=True)
    (apt / "dists" / "cloud-sdk" / index).write_text(packages)
    release = apt / "dists" / "cloud-sdk" / "Release"
    release.write_text(
        "Origin: stand-in for packages.cloud.google.com\nSuite: cloud-sdk\nCodename: cloud-sdk\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S UTC', time.gmtime())}\n"
        f"Architectures: {architecture}\nComponents: main\nSHA256:\n"
        f" {hashlib.sha256(packages.encode()).hexdigest()} {len(packages.encode())} {index}\n"
    )
    _gpg(signing_key, "--clearsign", "--output", str(release.with_name("InRelease")), str(release))


@pytest.fixture(scope="module")
def google_apt_stand_in(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AptRepository]:
    """Stands in for Google's apt repository: ``/google/apt`` is signed with the key it serves;
    ``/forged/apt`` serves the same key but is signed by another one."""
    if not shutil.which("gpg"):
        missing_tool("gpg is needed to sign the stand-in repository (scripts/install-test-tools.sh installs gnupg)")
    work = tmp_path_factory.mktemp("google-apt")
    google, stranger = work / "gnupg-google", work / "gnupg-stranger"
    fingerprint = _signing_key(google, "google")
    _signing_key(stranger, "stranger")
    debs = []
    # The CLI, and the Cloud Run proxy component an apt-installed gcloud needs for `gcloud run services proxy`.
    for name, program in (("google-cloud-cli", "usr/bin/gcloud"),
                          ("google-cloud-cli-cloud-run-proxy", "usr/lib/google-cloud-sdk/bin/cloud-run-proxy")):
        package = work / name
        (package / "DEBIAN").mkdir(parents=True)
        (package / "DEBIAN" / "control").write_text(
            f"Package: {name}\nVersion: 999.0.0-0\nArchitecture: all\nMaintainer: tests <tests@example.invalid>\n"
            "Description: stand-in for the Google Cloud CLI\n"
        )
        (package / program).parent.mkdir(parents=True)
        (package / program).write_text("#!/bin/sh\necho 'Google Cloud SDK 999.0.0 (stand-in)'\n")
        (package / program).chmod(0o755)
        debs.append(work / f"{name}_999.0.0-0_all.deb")
        subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(package), str(debs[-1])],
                       capture_output=True, check=True, timeout=60)
    architecture = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                                  check=True).stdout.strip()
    served = work / "served"
    _write_apt_repository(served / "google", google, google, debs, architecture)
    _write_apt_repository(served / "forged", google, stranger, debs, architecture)
    for home in (google, stranger):
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True)

    # Python's own file server; its access log (stderr) says what apt asked for.
    port = free_port()
    server = start_process("google-apt-stand-in", [sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                                                   "--directory", str(served), str(port)],
                           f"http://127.0.0.1:{port}", health_path="/", log_dir=work)
    with server:
        yield AptRepository(url=server.url, fingerprint=fingerprint, log=server.log)


def _build_devcontainer_image(repository: str, base_image: str, tag: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        # --force-rm: the build that must fail (a forged signature) leaves no stopped container behind.
        ["docker", "build", "--force-rm", "--network", "host", "-t", tag, "--build-arg", f"BASE_IMAGE={base_image}",
         "--build-arg", f"GCLOUD_APT_REPOSITORY={repository}",
         "--build-arg", f"GCLOUD_APT_KEY_URL={repository}/doc/apt-key.gpg", str(DEVCONTAINER_DIR)],
        capture_output=True, text=True, timeout=1200,
    )


@pytest.mark.slow
@pytest.mark.docker
def test_dockerfile_installs_gcloud_from_a_signed_apt_repository_stand_in(
    google_apt_stand_in: AptRepository, docker_build_args: dict[str, str]
) -> None:
    """Stands in for Google's repository (unreachable here) with one on loopback, on the local Debian 12 image."""
    tag = "deploy-ml-workshop/devcontainer:test"  # kept, like the back-end's test image: its first layer is cached
    build = _build_devcontainer_image(f"{google_apt_stand_in.url}/google/apt", docker_build_args["base_image"], tag)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    for path in ("doc/apt-key.gpg", "dists/cloud-sdk/InRelease", "pool/google-cloud-cli_999.0.0-0_all.deb",
                 "pool/google-cloud-cli-cloud-run-proxy_999.0.0-0_all.deb"):
        assert google_apt_stand_in.asked_for(f"/google/apt/{path}"), google_apt_stand_in.log()[-3000:]
    inside = subprocess.run(
        ["docker", "run", "--rm", tag, "sh", "-c",
         "gcloud --version && dpkg -s google-cloud-cli-cloud-run-proxy >/dev/null"
         " && cat /etc/apt/sources.list.d/google-cloud-sdk.list"
         " && gpg --show-keys --with-colons /usr/share/keyrings/cloud.google.gpg"
         " && ! ls /etc/apt/trusted.gpg /etc/apt/trusted.gpg.d/*google* 2>/dev/null"],
        capture_output=True, text=True, timeout=120,
    )
    assert inside.returncode == 0, inside.stdout + inside.stderr
    assert "Google Cloud SDK 999.0.0 (stand-in)" in inside.stdout
    assert "[signed-by=/usr/share/keyrings/cloud.google.gpg]" in inside.stdout
    assert f"fpr:::::::::{google_apt_stand_in.fingerprint}:" in inside.stdout, "the keyring holds another key"

    # The keyring is really checked: a repository signed by another key stops the build.
    forged_tag = "deploy-ml-workshop/devcontainer:forged-test"
    forged = _build_devcontainer_image(f"{google_apt_stand_in.url}/forged/apt", docker_build_args["base_image"],
                                       forged_tag)
    subprocess.run(["docker", "rmi", "-f", forged_tag], capture_output=True)
    assert forged.returncode != 0
    assert "NO_PUBKEY" in forged.stdout + forged.stderr or "not signed" in forged.stdout + forged.stderr


def test_links_use_the_codespace_forwarded_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODESPACE_NAME", raising=False)
    monkeypatch.delenv("CODESPACES", raising=False)
    assert public_url(8501) == "http://localhost:8501" and not in_codespace()
    monkeypatch.setenv("CODESPACE_NAME", "fluffy-space-train-x7")
    monkeypatch.setenv("GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN", "app.github.dev")
    assert public_url(8000, "/docs") == "https://fluffy-space-train-x7-8000.app.github.dev/docs"
    assert in_codespace()
