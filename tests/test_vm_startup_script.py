"""The VM's start-up script (``workshop/deploy/startup.sh``), run for real, every step included.

Google's side cannot exist here, so each piece of it has a stand-in that behaves the same way:

- Artifact Registry: Debian's ``docker-registry`` on a free loopback port, with htpasswd auth, so a pull
  without credentials is refused and the login really matters;
- ``docker-credential-gcr`` (COS's credential helper): a fake on PATH whose ``configure-docker`` writes the
  ``credHelpers`` entry into docker's config the way the real one does, and whose ``get`` answers with a token
  (the registry's password) instead of the VM service account's access token;
- the VM: a network namespace created by the test (``ip netns``), with COS's host firewall in it (incoming traffic
  dropped, SSH and established connections accepted), so the script's ``iptables`` runs for real without touching
  this machine's own rules;
- the metadata server: a small HTTP server inside that namespace, reached by the script's own URL
  (``metadata.google.internal`` resolves to 127.0.0.1 there), which answers only with ``Metadata-Flavor: Google``.

The Docker engine is this machine's: the docker CLI reaches it through its Unix socket from inside the namespace,
and the engine pulls from the loopback registry and publishes the container's port on this machine's loopback.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from workshop.deploy.gcp import startup_script_text
from workshop.services import free_port, wait_for_http

# The first test also pushes the whole back-end image (several GB, compressed by the engine) to the registry.
pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1800)]

REGISTRY_BINARY = Path("/usr/bin/docker-registry")
# What docker-credential-gcr answers as the user name (its version inside); the token is the password.
HELPER_USERNAME = "_dcgcr_2_1_32_token"
TOKEN = "ya29.loopback-test-token"
REPOSITORY = "workshop/backend"
API_KEY = "vm-key"
METADATA_PORT = 80  # the real metadata server's port; free in a fresh namespace
# Fast retries for the tests; the script's defaults (5 attempts, 5 s more each time) are for a real boot.
RETRY_ENV = {"PULL_ATTEMPTS": "5", "PULL_RETRY_SECONDS": "1"}
_vm_numbers = itertools.count(1)


def _fail_or_skip(reason: str) -> None:
    """Missing tools skip the module on a laptop; in CI they are a failure (scripts/test.sh installs them)."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _bcrypt(password: str) -> str:
    """A bcrypt hash (the only kind the registry's htpasswd accepts), from the system's libcrypt."""
    name = ctypes.util.find_library("crypt")
    if name is None:
        _fail_or_skip("libcrypt is missing: cannot write the registry's htpasswd file")
    libcrypt = ctypes.CDLL(name)
    libcrypt.crypt_gensalt.restype = libcrypt.crypt.restype = ctypes.c_char_p
    salt = libcrypt.crypt_gensalt(b"$2b$", 5, None, 0)
    return libcrypt.crypt(password.encode(), salt).decode()


# ------------------------------------------------------------------ the stand-in for Artifact Registry
@dataclass
class LoopbackRegistry:
    """Debian's docker-registry on 127.0.0.1, with its own config, storage and htpasswd file in ``folder``."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "registry.log"

    def write_config(self) -> None:
        (self.folder / "htpasswd").write_text(f"{HELPER_USERNAME}:{_bcrypt(TOKEN)}\n")
        config = {  # JSON is YAML: no YAML writer needed
            "version": "0.1",
            "log": {"level": "info", "formatter": "text"},
            "storage": {"filesystem": {"rootdirectory": str(self.folder / "storage")}},
            "http": {"addr": self.host, "secret": "loopback-test-only"},
            "auth": {"htpasswd": {"realm": "workshop-test", "path": str(self.folder / "htpasswd")}},
        }
        (self.folder / "config.yml").write_text(json.dumps(config, indent=2))

    def start(self) -> None:
        assert self.process is None, "the registry is already running"
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [str(REGISTRY_BINARY), "serve", str(self.folder / "config.yml")], stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the registry stopped: {self.log.read_text()[-2000:]}"
            try:
                # Auth is on: the API root refuses an anonymous client.
                if requests.get(f"http://{self.host}/v2/", timeout=2).status_code == 401:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the registry did not answer on {self.host}: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


def docker(*args: str, check: bool = True, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run the docker CLI; return its stdout, or fail with its stderr."""
    result = subprocess.run(["docker", *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check:
        assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
    return result.stdout + result.stderr


def forget_image(*references: str) -> None:
    """Remove the local copies, so that the next start has to pull for real."""
    for reference in references:
        docker("rmi", "-f", reference, check=False)


@dataclass
class PushedImage:
    """The test image in the loopback registry: by tag, by digest, and the image id the pull must give back."""

    registry: LoopbackRegistry
    tag: str
    digest: str
    image_id: str


@pytest.fixture(scope="module")
def pushed_image(backend_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PushedImage]:
    """The back-end image plus one layer of its own, pushed to the loopback registry and removed locally.

    It has no PyTorch: pushing the image with PyTorch (7 GB with PyPI's CUDA PyTorch) took 5 to 8 minutes of
    every test run.

    The extra layer (a file with this run's id) exists nowhere but in the registry once the local copy is gone,
    so each start of the script downloads it: the pull is real, not "Image is up to date".
    """
    if not REGISTRY_BINARY.exists():
        _fail_or_skip("Debian's docker-registry is missing (scripts/install-test-tools.sh installs it)")
    folder = tmp_path_factory.mktemp("loopback-registry")
    registry = LoopbackRegistry(folder)
    registry.write_config()
    context = folder / "build-context"
    context.mkdir()
    (context / "marker").write_text(f"pushed by {__name__} in process {os.getpid()}\n")
    (context / "Dockerfile").write_text(f"FROM {backend_image}\nCOPY marker /workshop-startup-test-marker\n")
    tag = f"{registry.host}/{REPOSITORY}:startup-test-{os.getpid()}"
    # The push logs in with a private docker config: the user's own ~/.docker is never touched.
    push_env = {**os.environ, "DOCKER_CONFIG": str(folder / "push-docker-config")}
    registry.start()
    try:
        docker("build", "-q", "-t", tag, str(context))
        docker("login", registry.host, "-u", HELPER_USERNAME, "--password", TOKEN, env=push_env)
        started = time.perf_counter()
        docker("push", tag, env=push_env, timeout=1500)
        print(f"\npush of the back-end image to the loopback registry: {time.perf_counter() - started:.1f} s")
        image_id = docker("image", "inspect", "--format", "{{.Id}}", tag).strip()
        digests = json.loads(docker("image", "inspect", "--format", "{{json .RepoDigests}}", tag))
        digest = next(reference for reference in digests if reference.startswith(registry.host))
        forget_image(tag, digest)
        registry.stop()  # each test starts it when it wants it
        yield PushedImage(registry, tag, digest, image_id)
    finally:
        registry.stop()
        forget_image(tag)
        shutil.rmtree(folder, ignore_errors=True)  # the registry's copy of the image: gigabytes


# ------------------------------------------------------------------ the stand-ins for the VM
FAKE_CREDENTIAL_HELPER = '''\
#!{python}
"""Stand-in for COS's docker-credential-gcr: the same verbs and files, a fixed token instead of Google's."""
import json, os, sys
from pathlib import Path

config_dir = Path(os.environ.get("DOCKER_CONFIG") or Path(os.environ["HOME"]) / ".docker")
verb = sys.argv[1] if len(sys.argv) > 1 else ""
if verb == "configure-docker":
    registries = [argument.split("=", 1)[1] for argument in sys.argv[2:] if argument.startswith("--registries=")]
    config_file = config_dir / "config.json"
    config = json.loads(config_file.read_text()) if config_file.exists() else {{}}
    for registry in ",".join(registries).split(","):
        config.setdefault("credHelpers", {{}})[registry] = "gcr"
    config_dir.mkdir(parents=True, exist_ok=True)
    config_file.write_text(json.dumps(config, indent="\\t"))
    print(f"{{config_file}} configured to use this credential helper for GCR registries")
elif verb == "get":
    server = sys.stdin.read().strip()
    with open({asked!r}, "a") as asked:
        asked.write(server + "\\n")
    print(json.dumps({{"ServerURL": server, "Username": {username!r}, "Secret": {token!r}}}))
else:
    sys.exit(f"docker-credential-gcr (test stand-in): unknown command {{verb!r}}")
'''

METADATA_SERVER = '''\
"""Stand-in for the GCE metadata server: instance attributes from a JSON file, read at each request."""
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

PREFIX = "/computeMetadata/v1/instance/attributes/"

class Metadata(BaseHTTPRequestHandler):
    def do_GET(self):
        attributes = json.load(open(sys.argv[2]))
        name = self.path[len(PREFIX):] if self.path.startswith(PREFIX) else None
        if self.headers.get("Metadata-Flavor") != "Google":
            status, body = 403, "Missing Metadata-Flavor:Google header."
        elif name in attributes:
            status, body = 200, attributes[name]
        else:
            status, body = 404, "Not found"
        self.send_response(status)
        self.send_header("Metadata-Flavor", "Google")
        self.end_headers()
        self.wfile.write(body.encode())

HTTPServer(("127.0.0.1", int(sys.argv[1])), Metadata).serve_forever()
'''

PORT_PROBE = '''\
"""Listen on a port inside the namespace and try to connect to it: prints open or closed."""
import socket, sys

port = int(sys.argv[1])
with socket.create_server(("127.0.0.1", port)) as server:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        print("open")
    except OSError:
        print("closed")
'''

# COS's host firewall, as far as the script cares: incoming traffic dropped unless it is SSH or an answer.
# COS also accepts all of loopback; here loopback stands in for the VM's external interface, so that rule is left
# out, and one rule lets the stand-in metadata server in (on a VM its answers come back as ESTABLISHED traffic).
COS_FIREWALL = [
    ["-P", "INPUT", "DROP"],
    ["-A", "INPUT", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
    ["-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"],
    ["-A", "INPUT", "-p", "tcp", "--dport", str(METADATA_PORT), "-j", "ACCEPT"],
]


@dataclass
class FakeVM:
    """A network namespace that plays the COS VM: metadata server, credential helper, firewall, its own files."""

    namespace: str
    folder: Path
    host_port: int = field(default_factory=free_port)
    container: str = ""
    metadata_server: subprocess.Popen | None = None

    @property
    def bin(self) -> Path:
        return self.folder / "bin"

    @property
    def credentials_home(self) -> Path:
        return self.folder / "var-lib-workshop"

    @property
    def helper_requests(self) -> list[str]:
        asked = self.folder / "helper-asked-for"
        return asked.read_text().split() if asked.exists() else []

    def inside(self, *command: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.namespace, *command], **kwargs)

    def set_metadata(self, **attributes: str) -> None:
        (self.folder / "metadata.json").write_text(json.dumps(attributes))

    def write_credential_helper(self, token: str) -> None:
        helper = self.bin / "docker-credential-gcr"
        helper.write_text(FAKE_CREDENTIAL_HELPER.format(
            python=sys.executable, asked=str(self.folder / "helper-asked-for"), username=HELPER_USERNAME, token=token,
        ))
        helper.chmod(0o755)

    def iptables_input(self) -> list[str]:
        listed = self.inside("iptables", "-w", "-S", "INPUT", capture_output=True, text=True, check=True)
        return listed.stdout.splitlines()

    def port_is_open(self, port: int) -> bool:
        probe = self.inside(sys.executable, str(self.folder / "probe.py"), str(port),
                            capture_output=True, text=True, timeout=30, check=True)
        return probe.stdout.strip() == "open"

    def boot(self, **environment: str) -> subprocess.Popen:
        """Start the start-up script as Google does at boot: as root, settings from the metadata."""
        script = self.folder / "startup.sh"
        script.write_text(startup_script_text())
        env = {
            "PATH": f"{self.bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "CREDENTIALS_HOME": str(self.credentials_home),
            # The script runs many VMs' worth of containers here: each test names its own.
            "CONTAINER_NAME": self.container,
            **RETRY_ENV, **environment,
        }
        return subprocess.Popen(["ip", "netns", "exec", self.namespace, "bash", str(script)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(boot: subprocess.Popen, timeout: float = 180, stderr_so_far: str = "") -> tuple[int, str, str]:
    """Wait for the script to end: its exit code, stdout and stderr."""
    stdout, stderr = boot.communicate(timeout=timeout)
    return boot.returncode, stdout, stderr_so_far + stderr


def stderr_until(boot: subprocess.Popen, wanted: str) -> str:
    """Read the script's stderr until a line holds ``wanted`` (or the script ends); return what was read."""
    assert boot.stderr is not None
    read = ""
    for line in boot.stderr:
        read += line
        if wanted in line:
            break
    return read


@pytest.fixture
def vm(docker_engine: None, tmp_path: Path) -> Iterator[FakeVM]:
    """A fresh fake VM per test; everything it made (namespace, files, containers) is removed afterwards."""
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("iptables"):
        _fail_or_skip("the fake VM needs root, ip and iptables (a network namespace of its own)")
    name = f"workshop-startup-test-{os.getpid()}-{next(_vm_numbers)}"
    namespace = name
    # `ip netns exec` mounts /etc/netns/<name>/hosts over /etc/hosts: the metadata server's name resolves inside.
    etc = Path("/etc/netns") / namespace
    fake = FakeVM(namespace, tmp_path, container=name)
    fake.bin.mkdir()
    (tmp_path / "probe.py").write_text(PORT_PROBE)
    (tmp_path / "metadata_server.py").write_text(METADATA_SERVER)
    fake.set_metadata()
    made = subprocess.run(["ip", "netns", "add", namespace], capture_output=True, text=True)
    if made.returncode != 0:
        _fail_or_skip(f"cannot create a network namespace here: {made.stderr.strip()}")
    try:
        etc.mkdir(parents=True)
        (etc / "hosts").write_text("127.0.0.1 localhost\n127.0.0.1 metadata.google.internal\n")
        fake.inside("ip", "link", "set", "lo", "up", check=True)
        for rule in COS_FIREWALL:
            fake.inside("iptables", "-w", *rule, check=True)
        fake.metadata_server = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, str(tmp_path / "metadata_server.py"),
             str(METADATA_PORT), str(tmp_path / "metadata.json")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_metadata_server(fake)
        yield fake
    finally:
        if fake.metadata_server is not None:
            fake.metadata_server.terminate()
            fake.metadata_server.wait(timeout=10)
        docker("rm", "-f", fake.container, check=False)
        subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)
        shutil.rmtree(etc, ignore_errors=True)
        with contextlib.suppress(OSError):
            etc.parent.rmdir()  # /etc/netns, if no other namespace has files there


def wait_for_metadata_server(vm: FakeVM, timeout: float = 20) -> None:
    """Wait until the script's own metadata URL answers inside the namespace (404: no attributes set yet)."""
    url = "http://metadata.google.internal/computeMetadata/v1/instance/attributes/image"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        asked = vm.inside("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2",
                          "-H", "Metadata-Flavor: Google", url, capture_output=True, text=True)
        if asked.stdout == "404":
            return
        time.sleep(0.1)
    raise AssertionError("the stand-in metadata server did not answer inside the fake VM")


def assert_backend_answers(vm: FakeVM) -> None:
    """The container answers on the published port: /health open, the API behind the key from the metadata."""
    base = f"http://127.0.0.1:{vm.host_port}"
    wait_for_http(f"{base}/health", timeout=120)
    assert requests.get(f"{base}/models", timeout=10).status_code == 401
    assert requests.get(f"{base}/models", headers={"X-API-Key": API_KEY}, timeout=10).status_code == 200


# ------------------------------------------------------------------ the tests
def test_loopback_registry_refuses_a_pull_without_the_credential_helper(pushed_image: PushedImage,
                                                                         tmp_path: Path) -> None:
    """The stand-in for Artifact Registry really needs the login: without credentials, the pull is refused."""
    pushed_image.registry.start()
    try:
        output = docker("pull", pushed_image.tag, check=False,
                        env={**os.environ, "DOCKER_CONFIG": str(tmp_path / "empty-docker-config")})
    finally:
        pushed_image.registry.stop()
    assert "no basic auth credentials" in output or "unauthorized" in output, output
    assert docker("images", "-q", pushed_image.tag).strip() == ""


def test_startup_script_logs_in_retries_the_pull_until_the_registry_is_up_and_opens_the_firewall(
    pushed_image: PushedImage, vm: FakeVM,
) -> None:
    """Boot with a tag reference while the registry is still down: the script retries, pulls with the helper's
    token, opens the port in COS's firewall (inside the fake VM's namespace), and the back-end answers.
    A second boot (a reboot) replaces the container and does not add the firewall rule twice."""
    registry = pushed_image.registry
    vm.write_credential_helper(TOKEN)
    vm.set_metadata(image=pushed_image.tag, **{"api-key": API_KEY, "port": str(vm.host_port)})
    assert not vm.port_is_open(vm.host_port), "COS's firewall should drop the port before the script opens it"
    try:
        boot = vm.boot()
        # The registry starts only once the first pull has failed (as at a boot where the network is not up yet).
        first_failure = stderr_until(boot, "pull failed (attempt 1 of 5)")
        registry.start()
        returncode, stdout, stderr = finish(boot, stderr_so_far=first_failure)
        assert returncode == 0, stdout + stderr
        assert "pull failed (attempt 1 of 5), retrying in 1s" in stderr
        assert f"container {vm.container} is running" in stdout
        assert f"docker logs in to {registry.host}" in stdout

        # The login went through the helper, configured the way docker-credential-gcr does it.
        config = json.loads((vm.credentials_home / ".docker" / "config.json").read_text())
        assert config["credHelpers"] == {registry.host: "gcr"}
        assert registry.host in vm.helper_requests
        assert docker("image", "inspect", "--format", "{{.Id}}", pushed_image.tag).strip() == pushed_image.image_id

        # The firewall: one rule for the port, and the port now lets connections in.
        rule = f"-A INPUT -p tcp -m tcp --dport {vm.host_port} -j ACCEPT"
        assert vm.iptables_input().count(rule) == 1
        assert vm.port_is_open(vm.host_port)

        assert_backend_answers(vm)
        inspect = json.loads(docker("inspect", vm.container))
        assert inspect[0]["HostConfig"]["RestartPolicy"]["Name"] == "always"

        # A reboot: same script, same metadata; one container, one firewall rule.
        returncode, stdout, stderr = finish(vm.boot())
        assert returncode == 0, stdout + stderr
        assert f"the host firewall already accepts tcp/{vm.host_port}" in stdout
        assert vm.iptables_input().count(rule) == 1
        assert len(docker("ps", "-aq", "--filter", f"name=^{vm.container}$").split()) == 1
        assert_backend_answers(vm)
    finally:
        registry.stop()
        docker("rm", "-f", vm.container, check=False)
        forget_image(pushed_image.tag, pushed_image.digest)


def test_startup_script_pulls_an_image_pinned_by_digest(pushed_image: PushedImage, vm: FakeVM) -> None:
    """The metadata pins the image by digest (``host:port/repo@sha256:...``): the registry host is still read
    from it for the login, and the container runs exactly that image."""
    registry = pushed_image.registry
    vm.write_credential_helper(TOKEN)
    vm.set_metadata(image=pushed_image.digest, **{"api-key": API_KEY, "port": str(vm.host_port)})
    registry.start()
    try:
        returncode, stdout, stderr = finish(vm.boot())
        assert returncode == 0, stdout + stderr
        assert f"docker logs in to {registry.host}" in stdout
        assert "pull failed" not in stderr
        assert registry.host in vm.helper_requests
        inspect = json.loads(docker("inspect", vm.container))
        assert inspect[0]["Image"] == pushed_image.image_id
        assert inspect[0]["Config"]["Image"] == pushed_image.digest
        assert_backend_answers(vm)
    finally:
        registry.stop()
        docker("rm", "-f", vm.container, check=False)
        forget_image(pushed_image.tag, pushed_image.digest)


def test_startup_script_gives_up_after_the_last_pull_attempt_with_a_clear_message(
    pushed_image: PushedImage, vm: FakeVM,
) -> None:
    """A token the registry refuses (as when the VM's service account may not read the repository): every attempt
    fails, the script stops after the last one with a message that says what to check, and starts nothing."""
    registry = pushed_image.registry
    vm.write_credential_helper("a-token-the-registry-refuses")
    vm.set_metadata(image=pushed_image.tag, **{"api-key": API_KEY, "port": str(vm.host_port)})
    registry.start()
    try:
        started = time.monotonic()
        returncode, stdout, stderr = finish(vm.boot(PULL_ATTEMPTS="3"))
        elapsed = time.monotonic() - started
    finally:
        registry.stop()
    assert returncode == 1, stdout + stderr
    assert "pull failed (attempt 1 of 3), retrying in 1s" in stderr
    assert "pull failed (attempt 2 of 3), retrying in 2s" in stderr
    assert "attempt 3 of 3" not in stderr  # no wait after the last attempt
    assert f"could not pull {pushed_image.tag} after 3 attempts" in stderr
    assert "roles/artifactregistry.reader" in stderr
    assert vm.helper_requests.count(registry.host) >= 3
    assert elapsed < 60
    assert docker("ps", "-aq", "--filter", f"name=^{vm.container}$").strip() == ""


def test_startup_script_without_image_in_the_metadata_fails_clearly(vm: FakeVM) -> None:
    """The metadata server answers, but has no ``image`` key: nothing to run, and the script says so."""
    vm.set_metadata(port=str(vm.host_port))
    returncode, stdout, stderr = finish(vm.boot())
    assert returncode == 1 and "no image in the metadata" in stderr
    assert vm.iptables_input().count(f"-A INPUT -p tcp -m tcp --dport {vm.host_port} -j ACCEPT") == 0


def test_startup_script_refuses_a_port_that_is_not_a_number(vm: FakeVM) -> None:
    """A bad ``port`` key stops the script before it touches the firewall or docker, with a clear message."""
    vm.set_metadata(image="127.0.0.1:1/workshop/backend:latest", port="80; reboot")
    returncode, stdout, stderr = finish(vm.boot())
    assert returncode == 1 and "not a number" in stderr
    assert "80; reboot" in stderr
