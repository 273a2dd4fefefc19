"""The Streamlit app through ``streamlit.testing.v1.AppTest``, against a real back-end process."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from workshop.frontend import APP_PATH
from workshop.frontend.logic import detection_summary, fake_prediction, filter_detections
from workshop.imaging import encode_image
from workshop.samples import shapes_sample
from workshop.services import BackgroundService, free_port

pytestmark = pytest.mark.slow


def new_app(backend_url: str) -> AppTest:
    app = AppTest.from_file(str(APP_PATH), default_timeout=120)
    app.run()
    app.text_input(key="backend_url").set_value(backend_url).run()
    return app


def upload(app: AppTest, *files: tuple[str, bytes]) -> AppTest:
    return app.file_uploader(key="uploads").set_value([(name, data, "image/png") for name, data in files]).run()


def errors(app: AppTest) -> list[str]:
    return [element.value for element in app.error]


def post_count(server: BackgroundService) -> int:
    return server.log().count('"path": "/predict')


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
    batches_before = live_server.log().count('"path": "/predict/batch')
    app.button(key="predict").click().run()
    assert not errors(app)
    assert any(h.value == "Gallery: 2 images" for h in app.subheader)
    assert len(app.table) == 2
    assert live_server.log().count('"path": "/predict/batch') == batches_before + 1


def test_backend_down_gives_a_clear_message(tmp_path) -> None:
    dead_url = f"http://127.0.0.1:{free_port()}"
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
    app = upload(new_app(live_server.url), ("notes.png", b"this is text"))
    assert any("notes.png is not an image" in e for e in errors(app))
    assert app.button(key="predict").disabled


def test_a_picture_over_the_pixel_limit_is_refused_before_sending(
    live_server: BackgroundService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The front-end checks uploads with the same WORKSHOP_ limits as the back-end."""
    monkeypatch.setenv("WORKSHOP_MAX_PIXELS", "10000")
    app = upload(new_app(live_server.url), ("big.png", encode_image(shapes_sample(seed=1, width=200, height=100).image)))
    assert any("big.png is not an image this app can use" in e and "limit of 10000 pixels" in e for e in errors(app))
    assert app.button(key="predict").disabled


def test_test_mode_answers_without_a_backend() -> None:
    app = new_app(f"http://127.0.0.1:{free_port()}")
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
