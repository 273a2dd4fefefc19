"""The Teacher page: a class's roster in, every student's deployment checked, one row each, against real servers.

Three students, three deployments on loopback: Alice's back-end runs with her key
and the roster gives it; Bob's is stopped (nothing listens on his port); Chloé's
runs, but the roster gives a key her server was not started with. The same class
goes through AppTest (Streamlit's script runner) and through Debian's Chromium.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from workshop.cli import main
from workshop.frontend import APP_PATH
from workshop.services import BackgroundService, start_backend, start_frontend

from support import refused_port, save_screenshot  # tests/ is on sys.path under pytest

pytestmark = pytest.mark.slow  # real server processes

SCREENSHOT_ASSET = Path(__file__).resolve().parents[1] / "docs" / "assets" / "ui-teacher.png"
ALICE_KEY = "alice-key-3f9a"
CHLOE_KEY = "chloe-key-81c2"
WRONG_KEY = "not-chloes-key"
KEYS = (ALICE_KEY, CHLOE_KEY, WRONG_KEY)
TEACHER_PAGE = "views/teacher.py"  # relative to app.py, as AppTest.switch_page wants it
COLUMNS = ["pass", "name", "url", "reachable", "ready", "contract", "model", "latency_ms", "failed", "fix"]


@dataclass(frozen=True)
class Class:
    """The three deployments and the roster that names them."""

    alice: str
    bob: str
    chloe: str

    @property
    def roster(self) -> str:
        return (
            f"name,url,key\nAlice,{self.alice},{ALICE_KEY}\nBob,{self.bob},\nChloé,{self.chloe},{WRONG_KEY}\n"
        )


def serve_with_key(key: str, log_dir: Path) -> Iterator[BackgroundService]:
    """``workshop serve`` as a student's VM runs it, with its own ``WORKSHOP_API_KEY``."""
    service = start_backend(env={"WORKSHOP_API_KEY": key}, log_dir=log_dir)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def alice_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundService]:
    yield from serve_with_key(ALICE_KEY, tmp_path_factory.mktemp("alice"))


@pytest.fixture(scope="module")
def chloe_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundService]:
    yield from serve_with_key(CHLOE_KEY, tmp_path_factory.mktemp("chloe"))


@pytest.fixture(scope="module")
def bob_url() -> Iterator[str]:
    """Bob's stopped back-end: a port held, for the whole module, where every connection is refused."""
    with refused_port() as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def klass(alice_backend: BackgroundService, chloe_backend: BackgroundService, bob_url: str) -> Class:
    return Class(alice=alice_backend.url, bob=bob_url, chloe=chloe_backend.url)


def teacher_page() -> AppTest:
    app = AppTest.from_file(str(APP_PATH), default_timeout=120)
    app.run()
    return app.switch_page(TEACHER_PAGE).run()


def paste(app: AppTest, roster: str) -> AppTest:
    return app.text_area(key="roster_text").set_value(roster).run()


def rows_by_name(app: AppTest) -> dict[str, dict[str, str]]:
    """The table's rows as the teacher reads them: st.table renders Markdown, so the page escapes every cell."""
    table = app.table[0].value
    assert list(table.columns) == COLUMNS
    records = table.to_dict("records")
    rows = [{column: re.sub(r"\\(.)", r"\1", cell) for column, cell in record.items()} for record in records]
    return {row["name"]: row for row in rows}


def predictions(server: BackgroundService) -> int:
    return server.count_in_log('"path": "/predict')


def assert_the_class_is_graded(rows: dict[str, dict[str, str]], klass: Class) -> None:
    """Row by row, what ``workshop check --roster`` says of each student (tests/test_check.py)."""
    assert list(rows) == ["Alice", "Bob", "Chloé"]  # the roster's order
    alice, bob, chloe = rows["Alice"], rows["Bob"], rows["Chloé"]
    assert (alice["pass"], alice["url"], alice["reachable"], alice["ready"], alice["contract"]) == (
        "✓", klass.alice, "yes", "yes", "8/8"
    )
    assert (alice["model"], alice["failed"], alice["fix"]) == ("shapes", "", "")
    assert int(alice["latency_ms"]) > 0  # measured, whatever the machine's speed
    assert (bob["pass"], bob["url"], bob["reachable"], bob["ready"], bob["contract"], bob["failed"]) == (
        "✗", klass.bob, "no", "-", "0/1", "health"
    )
    assert (bob["model"], bob["latency_ms"]) == ("", "")
    assert bob["fix"].startswith("Nothing listens there: start the back-end")
    assert (chloe["pass"], chloe["reachable"], chloe["ready"], chloe["contract"], chloe["failed"]) == (
        "✗", "yes", "yes", "3/4", "models"
    )
    assert chloe["fix"].startswith("Give the key the server was started with")
    # Shown as written: in the browser, st.table would make Markdown of it (code here, an empty list for "-").
    assert "`workshop gcp deploy` printed it once" in chloe["fix"]


# ---------------------------------------------------------------------------------------- AppTest


def test_the_page_is_in_the_apps_navigation() -> None:
    app = teacher_page()
    assert not app.exception
    assert app.title[0].value == "Teacher: check the class's deployments"
    assert [info.value for info in app.info] == [
        "Upload the roster or paste it above: one line per student, under the header `name,url,key`."
    ]
    assert not app.table and not app.get("download_button")  # nothing checked without a roster


def test_a_pasted_roster_is_graded_row_by_row(klass: Class, alice_backend: BackgroundService) -> None:
    app = paste(teacher_page(), klass.roster)
    assert not app.exception and not app.error
    assert_the_class_is_graded(rows_by_name(app), klass)
    assert [warning.value for warning in app.warning][0].startswith("**1 of 3** deployments pass every check")
    # The keys are the roster's, never the page's: not in the table, not in any text on the page.
    shown = app.table[0].value.to_csv() + " ".join(str(element.value) for element in app.main.markdown)
    assert not any(key in shown for key in KEYS)

    # A widget touched reruns the script: the results are the ones kept, no deployment is asked again.
    before = predictions(alice_backend)
    assert before > 0
    app.toggle(key="test_mode").set_value(True).run()
    assert predictions(alice_backend) == before
    assert_the_class_is_graded(rows_by_name(app), klass)
    # Refresh asks again.
    app.button(key="refresh").click().run()
    assert predictions(alice_backend) > before
    assert_the_class_is_graded(rows_by_name(app), klass)


@pytest.mark.parametrize(
    ("roster", "sentence"),
    [
        ("student,address\nAlice,http://127.0.0.1:9\n",
         "The roster you pasted has no 'name' and no 'url' column (its header reads 'student,address'): its first "
         "line must name the columns name,url,key (the key may be empty)."),
        ("name,url,key\n\n", "The roster you pasted names the columns but no student: add one line per student under "
                             "them."),
    ],
    ids=["wrong-columns", "no-student"],
)
def test_a_malformed_roster_gets_its_one_sentence(roster: str, sentence: str) -> None:
    app = paste(teacher_page(), roster)
    assert not app.exception
    assert [error.value for error in app.error] == [sentence]
    assert not app.table and not app.get("download_button")


def expected_results(klass: Class) -> list[dict[str, str]]:
    """The results file of this class, written out by hand from the contract (tests/test_check.py), not computed:
    every column but Alice's latency, which is a measure (checked apart)."""
    return [
        {"name": "Alice", "url": klass.alice, "reachable": "yes", "ready": "yes", "contract": "8/8", "model": "shapes",
         "failed": "", "fix": ""},
        {"name": "Bob", "url": klass.bob, "reachable": "no", "ready": "-", "contract": "0/1", "model": "",
         "failed": "health",
         "fix": "Nothing listens there: start the back-end (workshop serve, docker run -p 8000:8000 ..., "
                "docker compose up) or correct the URL's host and port."},
        {"name": "Chloé", "url": klass.chloe, "reachable": "yes", "ready": "yes", "contract": "3/4", "model": "",
         "failed": "models",
         "fix": "Give the key the server was started with (its WORKSHOP_API_KEY; `workshop gcp deploy` printed it once)."},
    ]


def read_results(text: str, klass: Class) -> list[dict[str, str]]:
    """The rows of a results file, each one's latency checked and set aside: a number for Alice, empty otherwise."""
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        latency = row.pop("latency_ms")
        if row["name"] == "Alice":
            assert latency.isdigit() and int(latency) > 0, latency
        else:
            assert latency == "", (row["name"], latency)
    return rows


def test_the_download_is_the_class_results_file(
    klass: Class, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file the button serves is read where Streamlit keeps it (its media storage), and compared with the
    results written out by hand; ``workshop check --roster --output`` must write the same file for that roster."""
    served: list[tuple[bytes, str | None]] = []
    keep = MemoryMediaFileStorage.load_and_get_id

    def recording(self, path_or_data, mimetype, kind, filename=None):  # noqa: ANN001, ANN202
        served.append((path_or_data, filename))
        return keep(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recording)
    app = teacher_page()
    roster = klass.roster.replace(",", ";").encode("cp1252")  # as Excel in French saves it
    app.file_uploader(key="roster_file").set_value(("groupe-b.csv", roster, "text/csv")).run()
    assert not app.exception
    assert app.get("download_button")[0].proto.label == "Download the results (CSV)"
    downloads = [(data, name) for data, name in served if name and name.endswith(".csv")]
    assert len(downloads) == 1
    data, name = downloads[0]
    assert name == "groupe-b-results.csv"  # beside the roster's name, as the CLI names it
    page_csv = data.decode("utf-8") if isinstance(data, bytes) else data
    assert page_csv.splitlines()[0] == ",".join(COLUMNS[1:])
    assert read_results(page_csv, klass) == expected_results(klass)
    assert not any(key in page_csv for key in KEYS)

    (tmp_path / "groupe-b.csv").write_bytes(roster)
    assert main(["check", "--roster", str(tmp_path / "groupe-b.csv"), "--output", str(tmp_path / "cli.csv")]) == 1
    cli_csv = (tmp_path / "cli.csv").read_text(encoding="utf-8")
    assert cli_csv.splitlines()[0] == ",".join(COLUMNS[1:])
    assert read_results(cli_csv, klass) == expected_results(klass)


# ---------------------------------------------------------------------------------------- in the browser


@pytest.fixture(scope="module")
def frontend(klass: Class, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundService]:
    service = start_frontend(klass.alice, log_dir=tmp_path_factory.mktemp("frontend-logs"))
    yield service
    service.stop()


def test_the_class_in_the_browser_row_by_row(frontend: BackgroundService, klass: Class, page, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    roster = tmp_path / "class.csv"
    roster.write_text(klass.roster, encoding="utf-8")
    page.set_viewport_size({"width": 1400, "height": 900})  # the page's height: no blank half in the screenshot
    page.goto(frontend.url)
    page.get_by_role("link", name="Teacher").click()  # the page is in the sidebar's navigation
    expect(page.get_by_role("heading", name="Teacher: check the class's deployments")).to_be_visible(timeout=60_000)
    page.locator('input[type="file"]').set_input_files(str(roster))

    summary = page.get_by_text(re.compile(r"1 of 3 deployments pass every check \(checked at"))
    expect(summary).to_be_visible(timeout=120_000)
    table = page.locator("table")
    expect(table.locator("tbody tr")).to_have_count(3)
    header = [cell.strip() for cell in table.locator("thead th").all_inner_texts()]
    assert header == COLUMNS
    rows = {}
    for row in table.locator("tbody tr").all():
        cells = [cell.strip() for cell in row.locator("td, th").all_inner_texts()]
        rows[cells[1]] = dict(zip(COLUMNS, cells, strict=True))
    assert_the_class_is_graded(rows, klass)
    assert not any(key in page.locator("body").inner_text() for key in KEYS)

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download the results (CSV)").click()
    download = download_info.value
    assert download.suggested_filename == "class-results.csv"
    downloaded = Path(download.path()).read_text(encoding="utf-8")
    assert read_results(downloaded, klass) == expected_results(klass)

    save_screenshot(page, tmp_path / "ui-teacher.png", SCREENSHOT_ASSET)
