"""Stands in for the codespace's port forwarding: the front-end container behind a real nginx, in Chromium.

In a codespace the student never opens the front-end's own address. GitHub's
forwarding serves it from ``https://NAME-8501.app.github.dev``: another host
name and port, a proxy that rewrites the request's headers, and, often, the
page shown inside VS Code's port preview, a frame of another site. This test
builds that path from real parts:

- the real back-end (``workshop serve`` on a loopback port, the session's ``live_server``);
- the front-end *container*, image built from ``frontend/Dockerfile`` on the local base image,
  started twice: as in a codespace (``CODESPACES``/``CODESPACE_NAME`` handed over, as compose
  does) and as anywhere else (no variables);
- Debian's nginx, our own process (``daemon off``, pid and logs in a temporary folder) on free
  ports, proxying HTTP and the WebSocket (``/_stcore/stream``), rewriting ``Host`` to the
  upstream address, adding ``X-Forwarded-*``, and rewriting ``Origin`` to
  ``http://localhost:PORT``, which GitHub's forwarding is reported to do (mastodon/mastodon#26400).
  Without that ``Origin`` rewrite, a proxy that rewrites ``Host`` makes Streamlit refuse the
  WebSocket (its origin no longer matches the host), whatever the XSRF setting;
- a made-up forwarded host name, ``workshop-8501.app.github.localhost``, and an "editor" page on
  ``editor.vscode.localhost``, another site, that shows the front-end in an iframe, as VS Code's
  preview does; Chromium resolves ``*.localhost`` to 127.0.0.1 itself, so no traffic leaves the machine.

In each case the browser uploads a generated shapes picture, presses Predict and must see the
table (the picture's classes) and the annotated image. The case that must fail does: XSRF protection
on, page in the other site's frame. Streamlit sets its ``_streamlit_xsrf`` cookie (SameSite=Lax)
on a response the framed page fetches; a cross-site frame's response may not set a Lax cookie, so
the page has no token for the ``X-Xsrftoken`` header, and the upload is answered 403. The same
server opened in a tab through the same proxy keeps the cookie and works: the proxy alone does not
break the check, the frame does. What cannot be reproduced here: GitHub's own proxy and its
authentication, HTTPS (the forwarded URL is https; here plain http, which does not change the
SameSite rule), and VS Code's webview around the frame.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import DOCKER_BASE_IMAGE, REPO_ROOT, missing_tool  # tests/ is on sys.path under pytest

from workshop.containers import ComposeStack, run
from workshop.samples import shapes_sample
from workshop.services import BackgroundService, free_port, wait_for_http

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NGINX = Path("/usr/sbin/nginx")
IMAGE = "deploy-ml-workshop/frontend:proxy-test"
#: The forwarded host name the browser sees, as ``NAME-8501.app.github.dev`` in a codespace. Chromium
#: resolves every ``*.localhost`` name to the loopback address itself: no DNS, no traffic off the machine.
FORWARDED_HOST = "workshop-8501.app.github.localhost"
#: The editor's site, another registrable domain (``vscode.localhost``, not ``github.localhost``):
#: a page there that frames the front-end is cross-site, as VS Code's preview is.
EDITOR_HOST = "editor.vscode.localhost"
UPLOAD_ROUTE = "/_stcore/upload_file/"


@dataclass
class ProxiedFrontend:
    """One front-end container and the forwarded URLs that reach it through nginx."""

    container: str
    xsrf_protection: bool
    url: str  # the front-end itself, as a browser tab opens it
    editor_url: str  # the editor page that shows it in a cross-site frame


@pytest.fixture(scope="module")
def frontend_image(docker_engine: None) -> Iterator[str]:
    """The front-end image on the local base image; its tag is removed afterwards (the layer cache stays)."""
    run(
        ["docker", "build", "-q", "-f", "frontend/Dockerfile", "-t", IMAGE,
         "--build-arg", f"BASE_IMAGE={DOCKER_BASE_IMAGE}", "."],
        cwd=REPO_ROOT, timeout=1800,
    )
    yield IMAGE
    subprocess.run(["docker", "rmi", "--no-prune", IMAGE], capture_output=True)


def start_frontend_container(image: str, backend_url: str, port: int, environment: dict[str, str]) -> str:
    """A detached front-end container on the host network, listening on ``port``; returns its id."""
    command = ["docker", "run", "-d", "--network", "host",
               "-e", f"WORKSHOP_UI_PORT={port}", "-e", f"WORKSHOP_BACKEND_URL={backend_url}"]
    for name, value in environment.items():
        command += ["-e", f"{name}={value}"]
    return run([*command, image]).strip()


def streamlit_xsrf_flag(container: str, timeout: float = 60) -> str:
    """The ``--server.enableXsrfProtection`` value Streamlit actually runs with, read from PID 1's command line.

    PID 1 is ``workshop ui`` until it replaces itself with Streamlit (``os.execve``): wait for that.
    """
    deadline = time.monotonic() + timeout
    while True:
        argv = run(["docker", "exec", container, "cat", "/proc/1/cmdline"]).split("\0")
        if "--server.enableXsrfProtection" in argv:
            return argv[argv.index("--server.enableXsrfProtection") + 1]
        assert time.monotonic() < deadline, f"Streamlit never started in the container: {argv}"
        time.sleep(0.5)


def nginx_config(folder: Path, routes: list[tuple[int, int]], editor_port: int) -> str:
    """nginx as the forwarding proxy: ``routes`` maps each public port to a front-end's port."""
    temp_paths = "\n".join(
        f"  {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    servers = "\n".join(f"""
  server {{
    listen 127.0.0.1:{public};
    server_name {FORWARDED_HOST};
    location / {{
      proxy_pass http://127.0.0.1:{upstream};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host 127.0.0.1:{upstream};
      proxy_set_header Origin $forwarded_origin_{upstream};
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_read_timeout 300s;
      client_max_body_size 50m;
    }}
  }}
  map $http_origin $forwarded_origin_{upstream} {{ default http://localhost:{upstream}; "" ""; }}"""
        for public, upstream in routes
    )
    return f"""daemon off;
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} info;
events {{ worker_connections 128; }}
http {{
  access_log {folder / "access.log"};
{temp_paths}
  map $http_upgrade $connection_upgrade {{ default upgrade; "" close; }}
{servers}
  server {{
    listen 127.0.0.1:{editor_port};
    server_name {EDITOR_HOST};
    root {folder / "editor"};
  }}
}}
"""


@pytest.fixture(scope="module")
def forwarded(frontend_image: str, live_server: BackgroundService) -> Iterator[dict[str, ProxiedFrontend]]:
    """Two front-end containers (as in a codespace; as anywhere else) behind one nginx; all removed afterwards."""
    if not NGINX.exists():
        missing_tool("Debian's nginx is not installed (scripts/install-test-tools.sh installs it)")
    folder = Path(tempfile.mkdtemp(prefix="workshop-proxy-"))
    folder.chmod(0o755)  # nginx's workers drop root (to nobody or www-data) and must read the editor page
    worlds = {
        "codespace": {"CODESPACES": "true", "CODESPACE_NAME": "workshop-test-x7"},
        "elsewhere": {},
    }
    containers: list[str] = []
    nginx: subprocess.Popen | None = None
    try:
        frontends: dict[str, ProxiedFrontend] = {}
        routes = []
        editor_port = free_port()
        (folder / "editor").mkdir()
        for world, environment in worlds.items():
            upstream, public = free_port(), free_port()
            containers.append(start_frontend_container(frontend_image, live_server.url, upstream, environment))
            routes.append((public, upstream))
            url = f"http://{FORWARDED_HOST}:{public}/"
            (folder / "editor" / f"{world}.html").write_text(
                f'<!doctype html><title>editor</title>'
                f'<iframe src="{url}" style="width:1380px;height:1850px;border:0"></iframe>'
            )
            editor_url = f"http://{EDITOR_HOST}:{editor_port}/{world}.html"
            frontends[world] = ProxiedFrontend(containers[-1], not environment, url, editor_url)
        (folder / "nginx.conf").write_text(nginx_config(folder, routes, editor_port))
        nginx = subprocess.Popen(
            [str(NGINX), "-p", str(folder), "-c", str(folder / "nginx.conf")],
            stdout=subprocess.DEVNULL, stderr=(folder / "nginx.stderr").open("w"),
        )
        for public, upstream in routes:
            wait_for_http(f"http://127.0.0.1:{upstream}/_stcore/health", timeout=120)
            wait_for_http(f"http://127.0.0.1:{public}/_stcore/health", timeout=30, process=nginx)
        yield frontends
    finally:
        if nginx is not None:
            nginx.terminate()  # SIGTERM: nginx's fast shutdown
            try:
                nginx.wait(timeout=30)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait()
        for container in containers:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_the_container_takes_its_xsrf_setting_from_the_codespace_variables(
    forwarded: dict[str, ProxiedFrontend],
) -> None:
    assert streamlit_xsrf_flag(forwarded["codespace"].container) == "false"
    assert streamlit_xsrf_flag(forwarded["elsewhere"].container) == "true"


@pytest.mark.parametrize(
    ("shell", "expected"),
    [
        pytest.param({"CODESPACES": "true", "CODESPACE_NAME": "workshop-test-x7"}, "false", id="codespace"),
        pytest.param({}, "true", id="elsewhere"),
        pytest.param({"CODESPACE_NAME": "x7", "WORKSHOP_UI_XSRF_PROTECTION": "true"}, "true", id="override"),
    ],
)
def test_compose_hands_the_setting_to_the_frontend_container(
    frontend_image: str, monkeypatch: pytest.MonkeyPatch, shell: dict[str, str], expected: str
) -> None:
    """docker-compose.yml's front-end service, started from the shell the student has (codespace or not)."""
    for name in ("CODESPACES", "CODESPACE_NAME", "WORKSHOP_UI_XSRF_PROTECTION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in shell.items():
        monkeypatch.setenv(name, value)
    stack = ComposeStack(
        project=f"workshopxsrf{os.getpid()}", backend_port=free_port(), frontend_port=free_port(),
        image_tag=frontend_image.rsplit(":", 1)[1],
    )
    try:
        # The front-end alone (--no-deps): the setting is all this test is about.
        run([*stack.compose, "-p", stack.project, "up", "-d", "--no-deps", "--no-build", "frontend"],
            env=stack.env, timeout=300)
        assert streamlit_xsrf_flag(stack.container("frontend")) == expected
    finally:
        stack.down()


@pytest.mark.parametrize(
    ("world", "framed", "uploads"),
    [
        pytest.param("codespace", True, True, id="codespace-preview-frame-check-off"),
        pytest.param("codespace", False, True, id="codespace-browser-tab-check-off"),
        pytest.param("elsewhere", False, True, id="browser-tab-check-on"),
        pytest.param("elsewhere", True, False, id="preview-frame-check-on-is-refused-403"),
    ],
)
def test_upload_and_predict_through_the_forwarding_proxy(
    forwarded: dict[str, ProxiedFrontend], page, tmp_path: Path, world: str, framed: bool, uploads: bool
) -> None:
    frontend = forwarded[world]
    sample = shapes_sample(seed=3)
    if uploads:
        image_path = tmp_path / "shapes.png"
        sample.image.save(image_path)
    else:
        # A small file for the refusal: Streamlit answers 403 without reading the body, and a body larger
        # than what its server reads ahead (64 KiB) is still unread when it closes the connection; nginx then
        # sees a reset and tells the browser 502 instead of passing the 403 on.
        image_path = tmp_path / "shapes.jpg"
        sample.image.resize((256, 256)).save(image_path, quality=80)
        assert image_path.stat().st_size < 32 * 1024
    upload_statuses: list[tuple[str, int]] = []  # (method, status) of every request to the upload route
    page.on(
        "response",
        lambda response: upload_statuses.append((response.request.method, response.status))
        if UPLOAD_ROUTE in response.url else None,
    )

    try:
        student_sees = upload_and_predict(page, frontend, framed, uploads, image_path)
    except AssertionError as failure:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        raise AssertionError(
            f"{failure}\nupload responses: {upload_statuses}; screenshot: {tmp_path / 'failure.png'}"
        ) from failure
    page.screenshot(path=str(tmp_path / "proxied-ui.png"), full_page=True)
    if not uploads:
        assert ("PUT", 403) in upload_statuses, upload_statuses
        print(f"\nwhat the student sees: {student_sees!r}")
        return
    assert ("PUT", 403) not in upload_statuses
    assert any(method == "PUT" and status < 300 for method, status in upload_statuses), upload_statuses
    cells = set(student_sees.split("\n"))
    assert {shape.class_name for shape in sample.shapes} <= cells, cells


def upload_and_predict(page, frontend: ProxiedFrontend, framed: bool, uploads: bool, image_path: Path) -> str:
    """A student's path through the proxied page; returns the refusal's text, or the table's cells, one a line."""
    from PIL import Image
    from playwright.sync_api import expect

    if framed:
        page.goto(frontend.editor_url)
        app = page.frame_locator("iframe")
    else:
        page.goto(frontend.url)
        app = page
    # Generous timeouts: a container's first page runs the app's script cold, on a shared 2-core machine.
    expect(app.get_by_role("heading", name="YOLO object detection")).to_be_visible(timeout=180_000)
    app.locator('input[type="file"]').set_input_files(str(image_path))
    if not uploads:
        refusal = app.get_by_text(re.compile("403")).first
        expect(refusal).to_be_visible(timeout=120_000)
        cookies = {cookie["name"] for cookie in page.context.cookies(frontend.url)}
        assert "_streamlit_xsrf" not in cookies  # the cross-site frame was not allowed to keep it
        expect(app.get_by_text(re.compile(r"^Found \d+ objects?:"))).to_have_count(0)
        return refusal.inner_text()

    expect(app.get_by_text(image_path.name).first).to_be_visible(timeout=60_000)
    predict = app.get_by_role("button", name="Predict")
    expect(predict).to_be_enabled(timeout=60_000)
    predict.click()
    expect(app.get_by_text(re.compile(r"^Found \d+ objects?:"))).to_be_visible(timeout=120_000)
    cookies = {cookie["name"] for cookie in page.context.cookies(frontend.url)}
    assert ("_streamlit_xsrf" in cookies) == frontend.xsrf_protection  # the check was really on (or off)
    expect(app.locator("table td").first).to_be_visible(timeout=60_000)
    annotated = app.locator("img[src*='/media/']").first  # Streamlit serves st.image from /media/
    expect(annotated).to_be_visible(timeout=60_000)
    assert annotated.evaluate("img => img.complete && img.naturalWidth") == Image.open(image_path).width
    return "\n".join(cell.strip() for cell in app.locator("table td").all_inner_texts())
