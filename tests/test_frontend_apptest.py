"""The Streamlit app through ``streamlit.testing.v1.AppTest``, against a real back-end process of this module's own.

Several tests count the requests the back-end logged while they ran: on a back-end only this module uses, no
request of another module (a browser page still polling, a timed-out request finishing) can be counted.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from workshop.frontend import APP_PATH
from workshop.frontend.logic import detection_summary, fake_prediction, filter_detections
from workshop.imaging import encode_image
from workshop.samples import shapes_sample
from workshop.services import BackgroundService, start_backend

from support import batch_uploads, refused_port  # tests/ is on sys.path under pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A stopped back-end: a port held, for the test, where every connection is refused."""
    with refused_port() as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundService]:
    """A real ``workshop serve`` for this module only (it stands in for the session's shared one)."""
    service = start_backend(log_dir=tmp_path_factory.mktemp("apptest-backend"))
    yield service
    service.stop()


def new_app(backend_url: str) -> AppTest:
    app = AppTest.from_file(str(APP_PATH), default_timeout=120)
    app.run()
    app.text_input(key="backend_url").set_value(backend_url).run()
    return app


def upload(app: AppTest, *files: tuple[str, bytes]) -> AppTest:
    return app.file_uploader(key="uploads").set_value([(name, data, "image/png") for name, data in files]).run()


def errors(app: AppTest) -> list[str]:
    return [element.value for element in app.error]


def markdowns(app: AppTest) -> list[str]:
    return [element.value for element in app.markdown]


def post_count(server: BackgroundService) -> int:
    return server.count_in_log('"path": "/predict')


def test_is_alive_shows_title_version_description_models(live_server: BackgroundService) -> None:
    app = new_app(live_server.url)
    app.button(key="is_alive").click().run()
    assert not app.exception
    assert app.success[0].value == "deploy-ml-workshop YOLO API, version 0.1.0"
    sidebar_text = " ".join(m.value for m in app.sidebar.markdown)
    assert "Object detection as a web service" in sidebar_text and "`shapes`" in sidebar_text
    assert app.selectbox(key="model").options[0] == "shapes"


def test_upload_predict_then_filter_without_a_new_request(live_server: BackgroundService) -> None:
    sample = shapes_sample(seed=3)
    app = upload(new_app(live_server.url), ("shapes.png", encode_image(sample.image)))
    app.button(key="predict").click().run()
    assert not app.exception and not errors(app)
    table = app.table[0].value
    assert set(table["class"]) == {shape.class_name for shape in sample.shapes}
    assert any("Model **shapes**" in m.value and "round trip" in m.value for m in app.markdown)
    assert len(app.get("download_button")) == 2

    requests_before = post_count(live_server)
    assert requests_before > 0  # the prediction above is in the server's access log
    app.slider(key="confidence").set_value(1.0).run()  # filter everything out, locally
    assert any(m.value == "Found nothing above the confidence threshold." for m in app.markdown)
    app.slider(key="confidence").set_value(0.25).run()
    assert len(app.table[0].value) == len(table)
    assert post_count(live_server) == requests_before  # the image was not sent again


def test_several_images_go_through_the_batch_route_into_a_gallery(live_server: BackgroundService) -> None:
    files = [(f"s{seed}.png", encode_image(shapes_sample(seed=seed).image)) for seed in (1, 2)]
    app = upload(new_app(live_server.url), *files)
    batches_before = live_server.count_in_log('"path": "/predict/batch')
    app.button(key="predict").click().run()
    assert not errors(app)
    assert any(h.value == "Gallery: 2 images" for h in app.subheader)
    assert len(app.table) == 2
    assert live_server.count_in_log('"path": "/predict/batch') == batches_before + 1


def test_backend_down_gives_a_clear_message(dead_url: str) -> None:
    app = new_app(dead_url)
    assert not app.exception
    assert any("Back-end unreachable" in e and dead_url in e for e in errors(app))
    app.button(key="is_alive").click().run()
    assert not app.exception and any("Back-end unreachable" in e for e in errors(app))


def test_error_from_backend_is_shown(live_server: BackgroundService) -> None:
    app = upload(new_app(live_server.url), ("shapes.png", encode_image(shapes_sample(seed=3).image)))
    app.selectbox(key="model").set_value("yolo26n").run()  # offline and not cached: the back-end says 503
    app.button(key="predict").click().run()
    assert not app.exception
    assert any("refused the request" in e and "no network" in e for e in errors(app))


def test_a_file_that_is_not_an_image_is_refused_before_sending(live_server: BackgroundService) -> None:
    app = new_app(live_server.url)
    before = post_count(live_server)
    app = upload(app, ("notes.png", b"this is text"))
    assert any("notes.png is not an image" in e for e in errors(app))
    assert app.button(key="predict").disabled
    assert post_count(live_server) == before  # refused here: the back-end never saw it


def test_a_picture_over_the_pixel_limit_is_refused_before_sending(
    live_server: BackgroundService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The front-end checks uploads with the same WORKSHOP_ limits as the back-end."""
    monkeypatch.setenv("WORKSHOP_MAX_PIXELS", "10000")
    app = new_app(live_server.url)
    before = post_count(live_server)
    app = upload(app, ("big.png", encode_image(shapes_sample(seed=1, width=200, height=100).image)))
    assert any("big.png is not an image this app can use" in e and "limit of 10000 pixels" in e for e in errors(app))
    assert app.button(key="predict").disabled
    assert post_count(live_server) == before  # refused here: the back-end never saw it


def test_test_mode_answers_without_a_backend(dead_url: str) -> None:
    app = new_app(dead_url)
    app.toggle(key="test_mode").set_value(True).run()
    app = upload(app, ("shapes.png", encode_image(shapes_sample(seed=1).image)))
    app.button(key="predict").click().run()
    assert not app.exception and not errors(app)
    assert set(app.table[0].value["class"]) == {"test-object"}
    assert any("Model **test-mode**" in m.value for m in app.markdown)


def test_sample_picker_works(live_server: BackgroundService) -> None:
    app = new_app(live_server.url)
    app.radio(key="source").set_value("Sample").run()
    app.selectbox(key="sample").set_value("shapes 1").run()
    app.button(key="predict").click().run()
    assert not errors(app) and len(app.table) == 1


def test_logic_helpers() -> None:
    fake = fake_prediction(shapes_sample(seed=0).image)
    assert len(filter_detections(fake.detections, 0.5)) == 1
    assert detection_summary(fake.detections) == "Found 2 objects: 2 test-object."


def test_slow_backend_times_out_with_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    # A back-end that accepts connections and never answers: the slowest possible server.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("WORKSHOP_REQUEST_TIMEOUT", "0.5")  # the app reads its settings at every run
        app = new_app(f"http://127.0.0.1:{silent.getsockname()[1]}")
        assert not app.exception
        assert any("did not answer within 0.5 s" in e for e in errors(app))


# ------------------------------------------------------------------ camera
def test_a_camera_picture_is_sent_like_an_upload(live_server: BackgroundService) -> None:
    """The camera's picture (a JPEG from the browser, here set as AppTest sets it) gets boxes and a table."""
    sample = shapes_sample(seed=4, width=640, height=480)
    app = new_app(live_server.url)
    app.radio(key="source").set_value("Camera").run()
    assert app.button(key="predict").disabled  # no picture taken yet
    picture = ("camera.jpg", encode_image(sample.image, "JPEG"), "image/jpeg")
    app.camera_input(key="camera").set_value(picture).run()
    app.button(key="predict").click().run()
    assert not app.exception and not errors(app)
    assert sorted(app.table[0].value["class"]) == sorted(shape.class_name for shape in sample.shapes)
    assert app.get("image")[0].captions == ["camera.jpg: 4 detections"]


# ------------------------------------------------------------------- video
def video_page(backend_url: str) -> AppTest:
    app = new_app(backend_url)
    return app.switch_page("views/video.py").run()


def upload_video(app: AppTest, name: str, data: bytes) -> AppTest:
    return app.file_uploader(key="video_file").set_value([(name, data, "video/mp4")]).run()


def chart_counts(app: AppTest) -> dict[str, list[int]]:
    """The plot's data, per class and in time order, read back from the chart Streamlit sends to the browser."""
    from streamlit import dataframe_util

    (chart,) = [element for element in app.main if getattr(element, "type", "") == "vega_lite_chart"]
    data = dataframe_util.convert_arrow_bytes_to_pandas_df(chart.proto.datasets[0].data.data)
    if len(data.columns) == 2:  # one class: plotted as it is
        table = data.set_index(data.columns[0]).sort_index()
    else:  # several: st.line_chart melts them into (colour, value) pairs
        seconds, colour, value = data.columns
        table = data.pivot(index=seconds, columns=colour, values=value).sort_index()
    return {name: [int(v) for v in table[name]] for name in table.columns}


def test_video_page_plots_detections_per_class_and_shows_the_strip(live_server: BackgroundService) -> None:
    from workshop.frontend.demo_video import panning_clip
    from workshop.frontend.video import detection_counts

    clip = panning_clip()  # the page's sample clip
    app = video_page(live_server.url)
    app.radio(key="video_source").set_value("Sample clip").run()
    assert "sample_clip.mp4: 4.0 s, 320×240, h264 · **8 frames** to analyse at 2 a second" in markdowns(app)
    before = batch_uploads(live_server)
    app.button(key="analyse_video").click().run()
    assert not app.exception and not errors(app)
    assert batch_uploads(live_server) == before + 1
    assert "Model **shapes** · 8 frames in 1 request(s)" in " ".join(markdowns(app))

    responses = app.session_state["video_answer"][1].responses
    plotted = chart_counts(app)
    assert plotted == detection_counts(responses, 0.25)  # per class, per frame: the answers' counts
    assert set(plotted) == {"circle", "square", "triangle"}
    for index, seconds in enumerate(k / 2 for k in range(8)):  # each wholly visible shape is counted
        for name, values in plotted.items():
            assert values[index] >= sum(shape.class_name == name for shape in clip.shapes_at(seconds))
    (strip,) = app.get("image")[-1:]
    totals = [sum(values[i] for values in plotted.values()) for i in range(8)]
    assert strip.captions == [f"{k / 2:.1f} s: {n} detection{'' if n == 1 else 's'}" for k, n in enumerate(totals)]

    app.slider(key="video_confidence").set_value(1.0).run()  # filtered here, not asked again
    assert "Found nothing above the confidence threshold in any frame." in markdowns(app)
    assert batch_uploads(live_server) == before + 1


def test_video_frames_go_in_batches_of_the_batch_limit(
    live_server: BackgroundService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKSHOP_MAX_BATCH_IMAGES", "3")  # the front-end splits by the back-end's limit
    app = video_page(live_server.url)
    app.radio(key="video_source").set_value("Sample clip").run()
    before = batch_uploads(live_server)
    app.button(key="analyse_video").click().run()
    assert not errors(app)
    assert "Model **shapes** · 8 frames in 3 request(s)" in " ".join(markdowns(app))
    assert batch_uploads(live_server) == before + 3


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (None, None, "notes.mp4 is not a video. Upload an MP4, WebM or MOV file."),
        ("WORKSHOP_VIDEO_MAX_BYTES", "4096", "clip.mp4 is 9 kB, over the limit of 4 kB (WORKSHOP_VIDEO_MAX_BYTES)."),
        ("WORKSHOP_VIDEO_MAX_SECONDS", "3", "clip.mp4 lasts more than 3 s, the limit (WORKSHOP_VIDEO_MAX_SECONDS)."),
        ("WORKSHOP_VIDEO_MAX_FRAMES", "5", "gives 8 frames, over the limit of 5 (WORKSHOP_VIDEO_MAX_FRAMES)."),
    ],
)
def test_video_limits_show_their_message_and_nothing_is_sent(
    live_server: BackgroundService, monkeypatch: pytest.MonkeyPatch, variable: str | None, value: str | None,
    expected: str,
) -> None:
    from workshop.frontend.demo_video import panning_clip

    if variable:
        monkeypatch.setenv(variable, value)
        name, data = "clip.mp4", panning_clip().data
    else:
        name, data = "notes.mp4", b"These are my notes, not a video.\n" * 20
    app = video_page(live_server.url)
    before = batch_uploads(live_server), post_count(live_server)
    app = upload_video(app, name, data)
    assert not app.exception
    assert any(expected in e for e in errors(app)), errors(app)
    assert app.button(key="analyse_video").disabled
    assert (batch_uploads(live_server), post_count(live_server)) == before  # no frame, no request: nothing sent


def test_video_page_without_pyav_says_in_one_sentence_how_to_get_a_decoder(
    dead_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in the front-end image built without VIDEO=true: PyAV cannot be imported, the page says so."""
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now raises ModuleNotFoundError
    for module in ("workshop.frontend.video", "workshop.frontend.demo_video"):  # imported again by the page
        monkeypatch.delitem(sys.modules, module, raising=False)
    app = video_page(dead_url)
    assert not app.exception
    assert [info.value for info in app.info] == [
        "This image has no video decoder: build it with `--build-arg VIDEO=true` (with Compose: "
        "`VIDEO=true docker compose up --build`), or run the UI from the venv with `workshop ui`."
    ]
    assert not errors(app) and not app.main.radio and not app.main.button  # nothing to choose nor to press
    app.switch_page("views/images.py").run()  # the other pages work as before
    assert not app.exception and app.button(key="predict")


def test_video_page_in_test_mode_answers_without_a_backend(dead_url: str) -> None:
    app = new_app(dead_url)
    app.toggle(key="test_mode").set_value(True).run()
    app.switch_page("views/video.py").run()
    app.radio(key="video_source").set_value("Sample clip").run()
    app.button(key="analyse_video").click().run()
    assert not app.exception and not errors(app)
    assert chart_counts(app) == {"test-object": [2] * 8}
