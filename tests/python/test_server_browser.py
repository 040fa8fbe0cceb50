"""The web page of ``lookalike serve`` in a real browser: headless Chromium driven by Selenium.

One server per module, on an empty store in a temporary folder, indexes the photo set
(``$LOOKALIKE_DATA/photos``) through the API, with an admin key and no read key, so the page
reads without a key. A user then searches by uploading an edited copy of one photo and asks
for "more like this" on a hit. The page's contract with these tests: a file input
``#file-input`` (choosing a file starts the search), a ``#results`` element whose
``aria-busy`` is "false" once results are shown, one ``.hit`` per hit with the item id in
``data-id``, a thumbnail ``img``, the score as a plain number in ``.score`` and a button
saying "More like this".

Debian's ``chromium`` and ``chromium-driver`` and the pinned selenium of
``requirements-server-tests.txt`` must be installed (``make setup`` does it); the tests fail,
never skip, without them. A screenshot of the first search is kept in
``<repo>/.data/test-artifacts/browser.png``, and also written to ``$LOOKALIKE_SCREENSHOT`` when
that is set.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

import server_process  # noqa: E402
from server_process import REPO  # noqa: E402

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    SELENIUM_MISSING = None
except ImportError as error:  # the tests fail in the browser fixture, with instructions
    SELENIUM_MISSING = str(error)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DESKTOP = (1280, 900)
PHONE = (375, 740)
SEARCH_TIMEOUT = 60.0
IMAGES_TIMEOUT = 30.0
MIN_HITS = 5
QUERY_PHOTO = "skimage-chelsea.png"
QUERY_EDIT = "skimage-chelsea__crop80.jpg"
ARTIFACT = REPO / ".data" / "test-artifacts" / "browser.png"

# The state of #results as plain data, in one round trip.
RESULTS_STATE = """
const results = document.querySelector('#results');
if (!results) { return null; }
return {
  busy: results.getAttribute('aria-busy'),
  text: results.innerText.slice(0, 400),
  hits: Array.from(results.querySelectorAll('.hit')).map(hit => {
    const score = hit.querySelector('.score');
    return {
      id: hit.getAttribute('data-id'),
      score: score ? score.textContent : null,
      images: Array.from(hit.querySelectorAll('img')).map(img => ({
        src: img.currentSrc || img.src, complete: img.complete, width: img.naturalWidth})),
    };
  }),
};
"""

# XPath 1.0 has no lower-case(): an element's text, lower-cased, and the elements of class "hit".
LOWER_TEXT = "translate(normalize-space(.), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
HIT_XPATH = "//*[@id='results']//*[contains(concat(' ', normalize-space(@class), ' '), ' hit ')]"


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    """A server with an admin key and no read key, the photo set indexed into ``default``."""
    yield from server_process.start_indexed_server(request, tmp_path_factory.mktemp("browser-server"),
                                                   admin_key=server_process.new_key())


@pytest.fixture(scope="module")
def query_image(tmp_path_factory) -> Path:
    """An edited copy of the query photo: the 80% crop of scripts/make_edits.py, or one made here."""
    edit = server_process.data_dir() / "edits" / QUERY_EDIT
    if edit.is_file():
        return edit
    photo = server_process.photos_dir() / QUERY_PHOTO
    with Image.open(photo) as image:
        rgb = image.convert("RGB")
    side = math.sqrt(0.8)
    width, height = round(rgb.width * side), round(rgb.height * side)
    left, top = (rgb.width - width) // 4, (rgb.height - height) // 4
    path = tmp_path_factory.mktemp("query") / "chelsea-crop.jpg"
    rgb.crop((left, top, left + width, top + height)).save(path, "JPEG", quality=90)
    return path


@pytest.fixture(scope="module")
def query_photo_id(server) -> str:
    """The store's id of the photo the query was edited from, computed here and checked with the API."""
    photo = server_process.photos_dir() / QUERY_PHOTO
    expected = server_process.item_id(photo)
    status, item = server.get_json(f"/v1/collections/default/items/{expected}")
    assert status == 200, f"GET /v1/collections/default/items/{expected} ({QUERY_PHOTO}) answered {status}: {item}"
    assert item["id"] == expected
    if "name" in item:
        assert Path(item["name"]).name == QUERY_PHOTO, item
    return expected


@pytest.fixture
def browser():
    """Headless Chromium at 1280 x 900, logging the page's console."""
    if SELENIUM_MISSING:
        pytest.fail(f"selenium is not installed ({SELENIUM_MISSING}): run `make setup`, which installs "
                    "requirements-server-tests.txt into .venv", pytrace=False)
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not found: run `make setup`, which installs Debian's "
                    "chromium and chromium-driver", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--no-proxy-server",
                     f"--window-size={DESKTOP[0]},{DESKTOP[1]}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.set_window_size(*DESKTOP)
        yield driver
    finally:
        driver.quit()


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def photo_names() -> dict[str, str]:
    """Item id -> file name of the photo set, to make failure messages readable."""
    return {server_process.item_id(path): path.name for path in server_process.image_files(server_process.photos_dir())}


def ranking(hits: list[dict]) -> str:
    """The hits as "name score" pairs, best first."""
    names = photo_names()
    return ", ".join(f"{names.get(hit['id'], hit['id'])} {hit['score']}" for hit in hits[:12])


def results_state(driver) -> dict:
    """aria-busy, the start of the text and the hits of #results; fails when there is no #results."""
    state = driver.execute_script(RESULTS_STATE)
    assert state is not None, f"the page has no #results element:\n{driver.page_source[:2000]}"
    return state


def describe(state: dict) -> str:
    """A short account of #results for failure messages."""
    return f"aria-busy={state['busy']!r}, {len(state['hits'])} hits [{ranking(state['hits'])}], text {state['text']!r}"


def wait_for_new_results(driver, before: list[str | None], action: str) -> list[dict]:
    """Wait until #results is not busy and shows hits other than ``before``; returns the hits."""
    def settled(_):
        state = results_state(driver)
        ids = [hit["id"] for hit in state["hits"]]
        return state if state["busy"] == "false" and ids and ids != before else False

    try:
        return WebDriverWait(driver, SEARCH_TIMEOUT, poll_frequency=0.25).until(settled)["hits"]
    except TimeoutException:
        pass
    pytest.fail(f"{action}: no new results within {SEARCH_TIMEOUT:.0f} s; "
                f"#results has {describe(results_state(driver))}", pytrace=False)


def upload(driver, image: Path) -> list[dict]:
    """Choose a file in #file-input (which starts a search) and wait for the results."""
    before = [hit["id"] for hit in results_state(driver)["hits"]]
    driver.find_element(By.CSS_SELECTOR, "#file-input").send_keys(str(image))
    return wait_for_new_results(driver, before, f"uploading {image.name}")


def wait_for_images(driver) -> list[dict]:
    """Bring every hit's image into view until all have loaded; returns the hits."""
    driver.execute_script("document.querySelectorAll('#results .hit img').forEach(img => { img.loading = 'eager'; });")

    def loaded(_):
        driver.execute_script("document.querySelectorAll('#results .hit').forEach(hit => hit.scrollIntoView());")
        hits = results_state(driver)["hits"]
        images = [image for hit in hits for image in hit["images"]]
        return hits if images and all(image["complete"] and image["width"] > 0 for image in images) else False

    try:
        hits = WebDriverWait(driver, IMAGES_TIMEOUT, poll_frequency=0.25).until(loaded)
    except TimeoutException:
        hits = None
    if hits is None:
        images = [image for hit in results_state(driver)["hits"] for image in hit["images"]]
        broken = [image["src"] for image in images if not (image["complete"] and image["width"] > 0)]
        pytest.fail(f"hit images not loaded within {IMAGES_TIMEOUT:.0f} s "
                    f"({len(broken)} of {len(images)}): {broken[:5]}", pytrace=False)
    driver.execute_script("window.scrollTo(0, 0);")
    return hits


def scores(hits: list[dict]) -> list[float]:
    """The .score texts as numbers; fails on a hit without a numeric score."""
    values = []
    for hit in hits:
        assert hit["score"] is not None, f"hit {hit['id']} has no .score element"
        try:
            value = float(hit["score"].strip())
        except ValueError:
            value = math.nan
        assert math.isfinite(value), f"the .score of hit {hit['id']} is {hit['score']!r}, not a number"
        values.append(value)
    return values


def assert_loaded_only_from(driver, base_url: str) -> None:
    """Every resource the page fetched came from the server (or is a blob: or data: URL)."""
    urls = driver.execute_script("return performance.getEntriesByType('resource').map(entry => entry.name);")
    assert urls, "the page fetched no resources at all"
    foreign = [url for url in urls if not url.startswith((base_url + "/", "blob:", "data:"))]
    assert not foreign, f"the page loaded resources from outside {base_url}: {foreign}"


def assert_no_console_errors(driver) -> None:
    """No SEVERE entry in the browser console, except a missing favicon.ico."""
    entries = driver.get_log("browser")
    severe = [entry["message"] for entry in entries
              if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]]
    assert not severe, f"errors in the browser console: {severe}"


def save_screenshot(driver, tmp_path: Path) -> None:
    """Keep a screenshot in tmp_path and .data/test-artifacts, and in $LOOKALIKE_SCREENSHOT if set."""
    png = driver.get_screenshot_as_png()
    assert png.startswith(b"\x89PNG"), "the browser returned no PNG screenshot"
    targets = [tmp_path / "browser.png", ARTIFACT]
    if os.environ.get("LOOKALIKE_SCREENSHOT"):
        targets.append(Path(os.environ["LOOKALIKE_SCREENSHOT"]))
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(png)


def search_for_query(driver, server, query_image: Path, query_photo_id: str) -> list[dict]:
    """Open the page, upload the query, check the original photo comes first; returns the hits."""
    driver.get(server.base_url + "/")
    hits = upload(driver, query_image)
    assert hits[0]["id"] == query_photo_id, \
        f"uploading {query_image.name} ranked {ranking(hits)}: {QUERY_PHOTO} ({query_photo_id}) should come first"
    return hits


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


def test_uploading_an_edited_copy_shows_the_original_first(browser, server, query_image, query_photo_id, tmp_path):
    hits = search_for_query(browser, server, query_image, query_photo_id)
    assert len(hits) >= MIN_HITS, f"only {len(hits)} hits shown"
    hits = wait_for_images(browser)
    assert all(hit["images"] for hit in hits), "every hit shows an image"
    values = scores(hits)
    assert values[0] >= values[1], f"the first hit scores less than the second: {values}"
    assert values == sorted(values, reverse=True), f"hits are not best first: {values}"
    assert len(set(hit["id"] for hit in hits)) == len(hits), "a hit is shown twice"
    save_screenshot(browser, tmp_path)
    assert_loaded_only_from(browser, server.base_url)
    assert_no_console_errors(browser)


def test_more_like_this_searches_with_the_chosen_hit(browser, server, query_image, query_photo_id):
    hits = search_for_query(browser, server, query_image, query_photo_id)
    assert len(hits) >= 2, f"only {len(hits)} hits shown"
    chosen = hits[1]["id"]
    buttons = browser.find_elements(By.XPATH, f"({HIT_XPATH})[2]//button[contains({LOWER_TEXT}, 'more like')]")
    assert buttons, "the second hit has no button saying 'More like this'"
    second = browser.find_elements(By.CSS_SELECTOR, "#results .hit")[1]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", second)
    ActionChains(browser).move_to_element(second).perform()  # in case the button shows on hover
    buttons[0].click()
    hits = wait_for_new_results(browser, [hit["id"] for hit in hits], f"clicking 'More like this' on {chosen}")
    assert hits[0]["id"] == chosen, \
        f"'More like this' on {photo_names().get(chosen, chosen)} ranked {ranking(hits)}: it should come first"
    assert scores(hits[:1])[0] == pytest.approx(1.0, abs=0.01), "an item is most like itself: score 1"
    assert_no_console_errors(browser)


def test_page_fits_a_phone_screen(browser, server, query_image, query_photo_id):
    browser.set_window_size(*PHONE)
    browser.get(server.base_url + "/")
    browser.refresh()
    width = browser.execute_script("return window.innerWidth;")
    assert width <= PHONE[0], f"the window is {width} px wide, not {PHONE[0]}"
    hits = upload(browser, query_image)
    assert hits[0]["id"] == query_photo_id, f"the phone-sized page ranked {ranking(hits)}"
    wait_for_images(browser)
    scroll_width = browser.execute_script("return document.documentElement.scrollWidth;")
    assert scroll_width <= PHONE[0] + 1, \
        f"the page is {scroll_width} px wide at a {PHONE[0]} px window: it scrolls sideways"
    assert_loaded_only_from(browser, server.base_url)
    assert_no_console_errors(browser)


def sign_in(driver, server) -> None:
    """Open the page with the admin key saved, as a user who entered it in Settings."""
    driver.get(server.base_url + "/")
    driver.execute_script("localStorage.setItem('lookalike.key', arguments[0]);", server.admin_key)
    driver.refresh()


def test_an_unrelated_picture_is_answered_no_close_match(browser, server, tmp_path):
    checker = Image.new("RGB", (400, 300), "white")
    for x in range(0, 400, 50):
        for y in range(0, 300, 50):
            if (x // 50 + y // 50) % 2:
                checker.paste((0, 0, 0), (x, y, x + 50, y + 50))
    path = tmp_path / "checkerboard.png"
    checker.save(path)
    browser.get(server.base_url + "/")
    hits = upload(browser, path)
    assert hits, "no hits shown at all"
    divide = browser.find_elements(By.CSS_SELECTOR, "#results .divide")
    assert divide and "no close match" in divide[0].text.lower(), \
        f"a checkerboard among photos should be answered 'no close match'; #results says {results_state(browser)['text']!r}"
    assert browser.find_elements(By.CSS_SELECTOR, "#results .grid.weak .hit"), "the weak hits are not shown under the divide"
    assert "no close match" in browser.find_element(By.CSS_SELECTOR, "#status").text.lower()
    assert_no_console_errors(browser)


def test_marking_a_hit_not_relevant_moves_it_out_of_the_next_search(browser, server, query_image, query_photo_id):
    sign_in(browser, server)
    try:
        hits = upload(browser, query_image)
        assert hits[0]["id"] == query_photo_id, f"ranked {ranking(hits)}"
        unwanted = hits[1]["id"]
        button = browser.find_element(By.CSS_SELECTOR, f"#results .hit[data-id='{unwanted}'] .mark[aria-label^='Not a good']")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
        button.click()
        WebDriverWait(browser, SEARCH_TIMEOUT).until(lambda d: button.get_attribute("aria-pressed") == "true" and button.get_attribute("disabled"))
        # The page offers to search again with the marks; the hit marked not relevant is gone.
        again = browser.find_element(By.CSS_SELECTOR, "#apply-marks")
        WebDriverWait(browser, 10).until(lambda d: again.is_displayed())
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", again)
        again.click()
        after = wait_for_new_results(browser, [hit["id"] for hit in hits], "searching again with the marks")
        assert after[0]["id"] == query_photo_id, f"ranked {ranking(after)}"
        assert unwanted not in [hit["id"] for hit in after], f"the hit marked not relevant is still shown: {ranking(after)}"
        assert_no_console_errors(browser)
    finally:
        status, _, body = server.request("DELETE", "/v1/collections/default/feedback")
        assert status == 200, body


def test_duplicates_view_groups_a_copy_with_its_photo_and_keeps_the_chosen_one(browser, server, query_photo_id, tmp_path):
    photo = server_process.photos_dir() / QUERY_PHOTO
    with Image.open(photo) as image:
        copy = image.convert("RGB").resize((image.width * 3 // 4, image.height * 3 // 4))
    path = tmp_path / "chelsea-smaller.jpg"
    copy.save(path, "JPEG", quality=85)
    status, _, body = server.request("POST", "/v1/collections/default/items?name=chelsea-smaller.jpg", path.read_bytes(),
                                     content_type="image/jpeg")
    assert status in (200, 201), body
    copy_id = json.loads(body)["item"]["id"]
    sign_in(browser, server)
    browser.find_element(By.CSS_SELECTOR, "#find-duplicates").click()
    group_xpath = f"//*[@id='duplicate-groups']/li[.//*[@data-id='{copy_id}'] and .//*[@data-id='{query_photo_id}']]"
    try:
        WebDriverWait(browser, SEARCH_TIMEOUT).until(lambda d: d.find_elements(By.XPATH, group_xpath))
    except TimeoutException:
        pytest.fail(f"no group of {copy_id} with {query_photo_id} shown; #duplicates-status says "
                    f"{browser.find_element(By.CSS_SELECTOR, '#duplicates-status').text!r}; console: "
                    f"{[entry['message'] for entry in browser.get_log('browser')]}", pytrace=False)
    group = browser.find_element(By.XPATH, group_xpath)
    keep = group.find_element(By.CSS_SELECTOR, f".member[data-id='{query_photo_id}'] .keep")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", keep)
    keep.click()
    WebDriverWait(browser, 10).until(lambda d: d.switch_to.alert)
    alert = browser.switch_to.alert
    assert "remove 1 image" in alert.text.lower(), alert.text
    alert.accept()
    WebDriverWait(browser, SEARCH_TIMEOUT).until(lambda d: "kept" in group.text.lower())
    assert server.get_json(f"/v1/collections/default/items/{copy_id}")[0] == 404, "the copy was not removed"
    assert server.get_json(f"/v1/collections/default/items/{query_photo_id}")[0] == 200, "the kept photo was removed"
    assert_no_console_errors(browser)
