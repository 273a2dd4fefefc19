"""The real gcloud, pointed at the emulator: its environment, its login, and the stand-in docker.

What stands in for what cannot happen here, and nothing else:

- ``gcloud auth login`` (a browser and Google's accounts): :meth:`GcloudWorld.log_in` writes the account into
  gcloud's own credential store in the temporary ``CLOUDSDK_CONFIG``, as a login leaves it; API calls then carry
  the access token of ``CLOUDSDK_AUTH_ACCESS_TOKEN_FILE``. With ``identity=True`` the token file is left out and
  gcloud refreshes the stored login at the emulator's OAuth endpoint (``auth/token_host``), which also gives it
  an identity token (``gcloud auth print-identity-token``).
- ``docker push`` to Artifact Registry: a stand-in ``docker`` on PATH whose ``push`` registers the image's
  digest in the emulator, and refuses as docker does when ``gcloud auth configure-docker`` has not written the
  registry's credential helper into ``$DOCKER_CONFIG/config.json``. ``tag`` records the local image's content
  (``$FAKE_IMAGE_ID``); ``run`` and ``rm`` are recorded only.

Everything else is the real CLI: its parser, its REST requests and its error printing. gcloud's configuration,
HOME and docker's configuration live in the test's temporary folder; the GCE metadata server is switched off.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from .cloud import HOSTS, Cloud, Project
from .proxy import Answer, Proxy, Request

GCLOUD = shutil.which("gcloud", path="/usr/bin:/usr/local/bin:/opt/google-cloud-sdk/bin") or shutil.which("gcloud")
#: The APIs gcloud is pointed at the emulator for (``http://NAME.googleapis.com/``, served through the proxy).
OVERRIDES = ("compute", "artifactregistry", "cloudresourcemanager", "serviceusage", "cloudbilling", "run", "iam",
             "orgpolicy", "containeranalysis", "logging", "storage", "cloudbuild")

_FAKE_DOCKER = r'''#!{python}
"""Stand-in docker: tag, push (to the gcloud emulator), run and rm; every call logged to $FAKE_CALLS."""
import json, os, sys, urllib.request
args = sys.argv[1:]
with open(os.environ["FAKE_CALLS"], "a") as log:
    log.write(json.dumps(["docker", *args]) + "\n")
tags_file = os.environ["FAKE_DOCKER_TAGS"]
tags = json.load(open(tags_file)) if os.path.exists(tags_file) else {{}}
if args[0] == "tag":
    tags[args[2]] = os.environ.get("FAKE_IMAGE_ID", "image-v1")
    json.dump(tags, open(tags_file, "w"))
elif args[0] == "push":
    image = args[1]
    host = image.split("/", 1)[0]
    config_path = os.path.join(os.environ.get("DOCKER_CONFIG", os.path.expanduser("~/.docker")), "config.json")
    helpers = json.load(open(config_path)).get("credHelpers", {{}}) if os.path.exists(config_path) else {{}}
    if helpers.get(host) != "gcloud":
        print("denied: Unauthenticated request. Unauthenticated requests do not have permission "
              '"artifactregistry.repositories.uploadArtifacts" on resource', file=sys.stderr)
        sys.exit(1)
    if image not in tags:
        print(f"An image does not exist locally with the tag: {{image.rsplit(':', 1)[0]}}", file=sys.stderr)
        sys.exit(1)
    body = json.dumps({{"image": image, "content": tags[image]}}).encode()
    request = urllib.request.Request(os.environ["FAKE_EMULATOR"] + "/_emulator/push", data=body, method="POST")
    answer = json.load(urllib.request.urlopen(request))
    if "digest" not in answer:
        print(f"name unknown: Repository \"{{answer['repository']}}\" not found", file=sys.stderr)
        sys.exit(1)
    print(f"The push refers to repository [{{image.rsplit(':', 1)[0]}}]")
    print(f"{{image.rsplit(':', 1)[1]}}: digest: {{answer['digest']}} size: 1234")
elif args[0] == "run":
    print("f00dcafe" * 8)
elif args[0] in ("rm", "stop"):
    print(args[-1])
else:
    print(f"stand-in docker: {{args[0]}} is not emulated", file=sys.stderr)
    sys.exit(2)
'''


class Emulator:
    """The emulated cloud behind its loopback proxy. ``cloud`` is the state; ``log`` every request, in order."""

    def __init__(self, *projects: Project) -> None:
        self.cloud = Cloud(*projects)
        self.proxy = Proxy(self.cloud.route, self._admin, lambda host: bool(HOSTS.fullmatch(host)), self.cloud.run_app)

    def __enter__(self) -> Emulator:
        self.proxy.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.proxy.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}"

    @property
    def log(self) -> list[Request]:
        return self.proxy.log

    def forget(self) -> None:
        """Start a new request log (the state stays)."""
        self.proxy.log.clear()

    def _admin(self, request: Request) -> Answer:
        if request.method == "POST" and request.path == "/_emulator/push":
            try:
                return Answer(200, {"digest": self.cloud.push(request.body["image"], request.body["content"])})
            except KeyError as missing:
                return Answer(200, {"repository": missing.args[0]})
        return Answer(404, {"error": f"no such door: {request.path}"})


def require_gcloud() -> str:
    """The real gcloud's path; a test without it skips, except in CI, where it fails (CI must have gcloud)."""
    if GCLOUD:
        return GCLOUD
    if os.environ.get("CI"):
        pytest.fail("The Google Cloud CLI (gcloud) is missing: CI installs it, the cloud step's tests need it")
    pytest.skip("The Google Cloud CLI (gcloud) is not installed")


class GcloudWorld:
    """A temporary home for the real gcloud (and the stand-in docker) that talks to ``emulator``."""

    def __init__(self, root: Path, emulator: Emulator | None, account: str | None = "student@example.com",
                 identity: bool = False, project: str | None = None) -> None:
        self.gcloud = require_gcloud()
        self.root, self.emulator = root, emulator
        self.config, self.home = root / "gcloud-config", root / "home"
        self.docker_config, self.bin = root / "docker-config", root / "bin"
        for folder in (self.config, self.home, self.docker_config, self.bin):
            folder.mkdir(parents=True, exist_ok=True)
        self.calls_file, self.tags_file = root / "docker-calls.jsonl", root / "docker-tags.json"
        docker = self.bin / "docker"
        docker.write_text(_FAKE_DOCKER.format(python=sys.executable))
        docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
        self.token_file = root / "access-token"
        self.token_file.write_text("emulator-access-token\n")
        self.identity = identity
        self.env = self._environment(project)
        self.account = None
        if account:
            self.log_in(account)

    def _environment(self, project: str | None) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("CLOUDSDK_", "GOOGLE_", "DOCKER_", "FAKE_"))}
        env.update({
            "HOME": str(self.home), "CLOUDSDK_CONFIG": str(self.config), "DOCKER_CONFIG": str(self.docker_config),
            "PATH": f"{self.bin}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1", "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true", "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
            "CLOUDSDK_SURVEY_DISABLE_PROMPTS": "true", "CLOUDSDK_CORE_DISABLE_FILE_LOGGING": "true",
            # The GCE metadata server, off: gcloud must never think it runs on a Google VM.
            "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9", "NO_GCE_CHECK": "True",
            "FAKE_CALLS": str(self.calls_file), "FAKE_DOCKER_TAGS": str(self.tags_file),
            "WORKSHOP_LANG": "en", "NO_PROXY": "", "no_proxy": "",
        })
        for variable in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
            env.pop(variable, None)
        if project:
            env["CLOUDSDK_CORE_PROJECT"] = project
        if self.emulator is not None:
            env.update({
                "CLOUDSDK_PROXY_TYPE": "http", "CLOUDSDK_PROXY_ADDRESS": "127.0.0.1",
                "CLOUDSDK_PROXY_PORT": str(self.emulator.proxy.port), "FAKE_EMULATOR": self.emulator.url,
                **{f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{name.upper()}": f"http://{name}.googleapis.com/"
                   for name in OVERRIDES},
            })
            if self.identity:
                env["CLOUDSDK_AUTH_TOKEN_HOST"] = "http://oauth2.googleapis.com/token"
            else:
                env["CLOUDSDK_AUTH_ACCESS_TOKEN_FILE"] = str(self.token_file)
        else:
            # No emulator: no server at all. Anything that tries the network meets a closed port.
            env.update({"CLOUDSDK_PROXY_TYPE": "http", "CLOUDSDK_PROXY_ADDRESS": "127.0.0.1",
                        "CLOUDSDK_PROXY_PORT": "9"})
        return env

    def log_in(self, account: str) -> None:
        """What ``gcloud auth login`` leaves: the account's stored credential, and the account selected."""
        self.run("config", "list", check=True)  # creates gcloud's configuration and its credential store
        with sqlite3.connect(self.config / "credentials.db") as db:
            db.execute("CREATE TABLE IF NOT EXISTS credentials (account_id TEXT PRIMARY KEY, value BLOB)")
            db.execute("INSERT OR REPLACE INTO credentials VALUES (?, ?)", (account, json.dumps({
                "type": "authorized_user", "client_id": "32555940559.apps.googleusercontent.com",
                "client_secret": "emulator", "refresh_token": f"refresh-{account}"})))
        self.run("config", "set", "account", account, check=True)
        self.account = account

    def log_out(self) -> None:
        """``gcloud auth revoke`` without Google: the credential and the selected account are gone."""
        with sqlite3.connect(self.config / "credentials.db") as db:
            db.execute("DELETE FROM credentials")
        self.run("config", "unset", "account", check=True)
        self.account = None

    def run(self, *args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
        """``gcloud ARGS`` in this world."""
        result = subprocess.run([self.gcloud, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"gcloud {' '.join(args)} failed:\n{result.stderr}")
        return result

    def shell(self, script: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        """``bash -c script`` in this world (the real gcloud and the stand-in docker on PATH)."""
        return subprocess.run(["bash", "-c", script], env=self.env, cwd=cwd, capture_output=True, text=True,
                              timeout=timeout)

    def workshop(self, *args: str, cwd: Path, timeout: float = 300,
                 extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """``workshop ARGS`` (this checkout's CLI) in this world."""
        return subprocess.run([sys.executable, "-m", "workshop", *args], env={**self.env, **(extra or {})}, cwd=cwd,
                              capture_output=True, text=True, timeout=timeout)

    def docker_calls(self) -> list[list[str]]:
        if not self.calls_file.exists():
            return []
        return [json.loads(line) for line in self.calls_file.read_text().splitlines()]

    def patched(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """This world's environment in the test's own process (for code that calls gcloud in-process)."""
        for key in [key for key in os.environ if key.startswith(("CLOUDSDK_", "DOCKER_", "FAKE_"))]:
            monkeypatch.delenv(key)
        for key, value in self.env.items():
            monkeypatch.setenv(key, value)


def run_all(world: GcloudWorld, commands: Sequence[Sequence[str]]) -> Iterator[subprocess.CompletedProcess]:
    """Each command through ``world``'s gcloud, in order (commands start with "gcloud")."""
    for command in commands:
        yield world.run(*command[1:])
