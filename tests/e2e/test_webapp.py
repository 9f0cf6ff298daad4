"""The browser app at ``/app`` in a real headless Chromium, against a real server on loopback.

Needs Debian's ``chromium`` package (``apt-get install -y chromium``) and Playwright for Python;
Playwright's own browser downloads are never used. Screenshots go to ``test-output/webapp/``.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import IMAGES, ROOT, require
from tests.support.server import serve_app

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = ROOT / "test-output" / "webapp"


@pytest.fixture(scope="module")
def base_url(settings, detector):
    """The real app (real model) on a free loopback port, in a thread."""
    from app import create_app

    with serve_app(create_app(settings, model=detector)) as url:
        yield url


@pytest.fixture(scope="module")
def playwright():
    if not Path(CHROMIUM).exists():
        message = "Chromium is missing: apt-get install -y chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture()
def page(browser, base_url):
    """A fresh page on /app that records every request and every console error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.requests, page.console_errors = [], []
    page.on("request", lambda r: page.requests.append(r.url))
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    page.goto(base_url + "/app")
    expect(page).to_have_title("Object Detector")
    yield page
    context.close()


def upload(page: Page, path: Path) -> dict:
    """Choose ``path`` in the file input; returns the JSON the page received from /model/predict."""
    with page.expect_response("**/model/predict") as response:
        page.set_input_files("#file-input", str(path))
    return response.value.json()


def box_position(page: Page, label: str) -> tuple[float, float, float, float]:
    """Where the overlay drew ``label``'s box, as fractions of the displayed image (ymin, xmin, ymax, xmax)."""
    img = page.locator("#photo").bounding_box()
    rect = page.locator(f'#overlay rect.box[data-label="{label}"]').first.bounding_box()
    return (
        (rect["y"] - img["y"]) / img["height"],
        (rect["x"] - img["x"]) / img["width"],
        (rect["y"] + rect["height"] - img["y"]) / img["height"],
        (rect["x"] + rect["width"] - img["x"]) / img["width"],
    )


def assert_drawn_where_the_api_says(page: Page, predictions: list[dict], label: str) -> None:
    expected = next(p["detection_box"] for p in predictions if p["label"] == label)
    # The stroke straddles the rectangle's edge, so allow a couple of pixels either way.
    assert box_position(page, label) == pytest.approx(expected, abs=0.012), label


def test_photo_gets_boxes_labels_list_and_timing(page, base_url):
    body = upload(page, require(IMAGES / "baby-bear.jpg"))
    assert body["status"] == "ok"
    detections = page.locator("#detections li")
    expect(page.locator("#detections")).to_contain_text("teddy bear")
    expect(page.locator("#detections")).to_contain_text("person")
    expect(detections).to_have_count(2)  # default slider position 0.50
    expect(page.locator("#overlay rect.box")).to_have_count(2)
    for label in ("person", "teddy bear"):
        assert_drawn_where_the_api_says(page, body["predictions"], label)
    expect(page.locator("#timing")).to_contain_text(" ms")
    expect(page.locator("#error")).to_be_hidden()

    OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = OUTPUT / "baby-bear.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")

    same_origin = (base_url + "/", f"blob:{base_url}/")  # blob: is the picked photo, held by the page
    assert all(url.startswith(same_origin) for url in page.requests), page.requests  # nothing external
    assert not page.console_errors, page.console_errors


def test_slider_and_label_toggles_filter_without_a_new_request(page):
    upload(page, require(IMAGES / "baby-bear.jpg"))
    items = page.locator("#detections li")
    expect(items).to_have_count(2)
    predict_calls = sum("/model/predict" in url for url in page.requests)

    slider = page.locator("#threshold")
    slider.focus()
    page.keyboard.press("Home")  # keyboard only, as a keyboard user would
    expect(page.locator("#threshold-value")).to_have_text("0.05")
    low = items.count()
    assert low > 2
    expect(page.locator("#overlay rect.box")).to_have_count(low)

    page.keyboard.press("End")
    expect(page.locator("#threshold-value")).to_have_text("1.00")
    expect(items).to_have_count(0)
    expect(page.locator("#empty")).to_contain_text("Nothing shown")

    slider.fill("0.5")
    expect(items).to_have_count(2)
    person = page.get_by_role("checkbox", name="person")
    person.focus()
    page.keyboard.press("Space")
    expect(person).not_to_be_checked()
    expect(items).to_have_count(1)
    expect(page.locator("#detections")).not_to_contain_text("person")
    expect(page.locator('#overlay [data-label="person"]')).to_have_count(0)
    page.keyboard.press("Space")
    expect(items).to_have_count(2)

    assert sum("/model/predict" in url for url in page.requests) == predict_calls


def test_bad_file_shows_the_servers_message(page, tmp_path):
    upload(page, require(IMAGES / "baby-bear.jpg"))
    expect(page.locator("#detections li")).to_have_count(2)
    text_file = tmp_path / "notes.txt"
    text_file.write_text("this is a text file, not a picture")
    body = upload(page, text_file)
    assert body["status"] == "error"
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_have_text(body["message"])
    assert "not an image" in body["message"]
    expect(page.locator("#detections li")).to_have_count(0)
    expect(page.locator("#figure")).to_be_hidden()


def test_exif_rotated_photo_is_shown_upright_with_boxes_in_place(page, tmp_path):
    upright = Image.open(require(IMAGES / "baby-bear.jpg"))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # the pixels as a sideways camera stores them
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "sideways.jpg"
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=92, exif=exif)
    path.write_bytes(buf.getvalue())

    body = upload(page, path)
    expect(page.locator("#detections")).to_contain_text("teddy bear")
    natural = page.evaluate(
        "() => [document.getElementById('photo').naturalWidth, document.getElementById('photo').naturalHeight]"
    )
    assert tuple(natural) == upright.size  # displayed upright, as the API's boxes assume
    img = page.locator("#photo").bounding_box()
    assert img["width"] > img["height"]
    assert_drawn_where_the_api_says(page, body["predictions"], "teddy bear")
    page.screenshot(path=str(OUTPUT / "sideways-exif.png"), full_page=True)


def test_tall_photo_is_scaled_to_fit_and_boxes_scale_with_it(page):
    body = upload(page, require(IMAGES / "dog-human.jpg"))  # 640x962: taller than the viewport allows
    expect(page.locator("#detections")).to_contain_text("dog")
    shown = page.locator("#photo").bounding_box()
    assert shown["height"] < 962 * 0.9 and shown["width"] / shown["height"] == pytest.approx(640 / 962, rel=0.01)
    assert_drawn_where_the_api_says(page, body["predictions"], "dog")


def rects_intersect(a: dict, b: dict, slack: float = 0.01) -> bool:
    """Playwright bounding boxes share area (beyond sub-pixel rounding)."""
    return (
        a["x"] + slack < b["x"] + b["width"]
        and b["x"] + slack < a["x"] + a["width"]
        and a["y"] + slack < b["y"] + b["height"]
        and b["y"] + slack < a["y"] + a["height"]
    )


@pytest.mark.parametrize(
    ("name", "viewport"), [("dog-human.jpg", (1280, 900)), ("kite.jpg", (1280, 900)), ("kite.jpg", (420, 700))]
)
def test_labels_never_overlap_and_stay_inside_the_picture(browser, base_url, name, viewport):
    """As on the annotated images: at 0.30, dog-human.jpg's "dog" and "person" share a box and kite.jpg
    has eleven detections; every rendered label (tag and text) is inside the photo and apart from the others."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    page.goto(base_url + "/app")
    upload(page, require(IMAGES / name))
    page.locator("#threshold").fill("0.3")
    expect(page.locator("#threshold-value")).to_have_text("0.30")
    shown = page.locator("#detections li").count()
    assert shown >= 3
    tags = page.locator("#overlay g.tag")
    expect(tags).to_have_count(shown)  # room for every label here
    img = page.locator("#photo").bounding_box()
    rects = [tags.nth(i).bounding_box() for i in range(shown)]
    for rect in rects:
        assert rect["x"] >= img["x"] - 0.01 and rect["y"] >= img["y"] - 0.01, (rect, img)
        assert rect["x"] + rect["width"] <= img["x"] + img["width"] + 0.01, (rect, img)
        assert rect["y"] + rect["height"] <= img["y"] + img["height"] + 0.01, (rect, img)
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            assert not rects_intersect(a, b), (a, b)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"labels-{viewport[0]}-{name}.png"), full_page=True)
    context.close()


def _file_transfer(page: Page, path: Path):
    """A DataTransfer holding ``path`` as a File, as a drop or a paste would carry it."""
    return page.evaluate_handle(
        """([b64, name]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "image/jpeg" }));
            return transfer;
        }""",
        [base64.b64encode(path.read_bytes()).decode(), path.name],
    )


def test_drop_and_paste_send_the_picture(page):
    with page.expect_response("**/model/predict"):
        page.dispatch_event("#drop-zone", "drop", {"dataTransfer": _file_transfer(page, require(IMAGES / "dog.jpg"))})
    expect(page.locator("#detections")).to_contain_text("bicycle")

    transfer = _file_transfer(page, require(IMAGES / "baby-bear.jpg"))
    with page.expect_response("**/model/predict"):
        page.evaluate("(t) => document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: t }))", transfer)
    expect(page.locator("#detections")).to_contain_text("teddy bear")
    expect(page.locator("#detections")).not_to_contain_text("bicycle")


def test_camera_button_is_hidden_without_getusermedia(browser, base_url):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.add_init_script("Object.defineProperty(navigator, 'mediaDevices', { value: undefined })")
        page.goto(base_url + "/app")
        expect(page.locator("#file-input")).to_be_visible()
        expect(page.locator("#camera-start")).to_be_hidden()
    finally:
        context.close()


def test_webcam_snapshot_is_sent_for_detection(playwright, base_url):
    """Chromium's built-in fake camera stands in for a webcam (a synthetic test pattern)."""
    fake_camera = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + fake_camera)
    try:
        page = browser.new_page()
        page.goto(base_url + "/app")
        page.get_by_role("button", name="Use camera").click()
        expect(page.get_by_role("button", name="Take snapshot")).to_be_focused()
        page.wait_for_function("() => document.getElementById('camera-video').videoWidth > 0", timeout=10_000)
        with page.expect_response("**/model/predict") as response:
            page.get_by_role("button", name="Take snapshot").click()
        assert response.value.status == 200 and response.value.json()["status"] == "ok"
        expect(page.locator("#status")).to_contain_text("candidate objects found")
        page.get_by_role("button", name="Close camera").click()
        expect(page.locator("#camera")).to_be_hidden()
        assert page.evaluate("document.getElementById('camera-video').srcObject") is None
    finally:
        browser.close()


def test_with_api_key_set_the_app_asks_for_the_key_and_sends_it(browser, settings, detector):
    """API_KEY set: the first upload gets the server's 401 message and a key field; the key,
    once typed, sends the same picture again with ``X-API-Key`` and is kept for the tab only."""
    from dataclasses import replace

    from app import create_app

    key = "webapp-test-key-0123456789"
    with serve_app(create_app(replace(settings, api_key=key), model=detector)) as url:
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(url + "/app")
            expect(page.locator("#key-row")).to_be_hidden()
            body = upload(page, require(IMAGES / "baby-bear.jpg"))
            assert body["status"] == "error"
            expect(page.locator("#error")).to_contain_text(body["message"])
            expect(page.get_by_label("API key")).to_be_focused()

            with page.expect_request("**/model/predict") as sent:
                page.get_by_label("API key").fill(key)
                page.get_by_label("API key").press("Enter")
                page.get_by_label("API key").blur()
            assert sent.value.headers.get("x-api-key") == key
            expect(page.locator("#detections li")).to_have_count(2)
            expect(page.locator("#error")).to_be_hidden()

            page.reload()  # same tab: the key is remembered and sent with the next picture
            expect(page.get_by_label("API key")).to_have_value(key)
            assert upload(page, require(IMAGES / "dog-human.jpg"))["status"] == "ok"

            other_tab = context.new_page()  # same browser profile (shared localStorage), new tab
            other_tab.goto(url + "/app")
            expect(other_tab.locator("#key-row")).to_be_hidden()
            expect(other_tab.get_by_label("API key")).to_have_value("")
        finally:
            context.close()
