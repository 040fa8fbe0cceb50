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
that is set; one on a 390 px phone in ``browser-phone.png`` and ``$LOOKALIKE_SCREENSHOT_PHONE``.
"""

from __future__ import annotations

import json
import math
import urllib.request
import os
import subprocess
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
    from selenium.webdriver.support.select import Select
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


def save_screenshot(driver, tmp_path: Path, name: str = "browser.png", variable: str = "LOOKALIKE_SCREENSHOT") -> None:
    """Keep a screenshot in tmp_path and .data/test-artifacts, and in $LOOKALIKE_SCREENSHOT (or `variable`) if set."""
    png = driver.get_screenshot_as_png()
    assert png.startswith(b"\x89PNG"), "the browser returned no PNG screenshot"
    targets = [tmp_path / name, ARTIFACT.with_name(name)]
    if os.environ.get(variable):
        targets.append(Path(os.environ[variable]))
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


def upload_smaller_copy(server, tmp_path: Path, name: str, scale: float, quality: int) -> str:
    """A shrunk JPEG copy of the query photo, added to the collection through the API; its id."""
    with Image.open(server_process.photos_dir() / QUERY_PHOTO) as image:
        copy = image.convert("RGB").resize((round(image.width * scale), round(image.height * scale)))
    path = tmp_path / name
    copy.save(path, "JPEG", quality=quality)
    status, _, body = server.request("POST", f"/v1/collections/default/items?name={name}", path.read_bytes(),
                                     content_type="image/jpeg")
    assert status in (200, 201), body
    return json.loads(body)["item"]["id"]


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
    copy_id = upload_smaller_copy(server, tmp_path, "chelsea-smaller.jpg", 3 / 4, quality=85)
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


# ---------------------------------------------------------------------------
# Everyday use: addresses, phones, names, notices, paging, the lightbox
# ---------------------------------------------------------------------------

PHONE_390 = {"width": 390, "height": 844, "pixelRatio": 3.0, "touch": True}
PHONE_AGENT = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/120.0 Mobile Safari/537.36")


@pytest.fixture
def phone():
    """Headless Chromium emulating a 390 px touch phone (coarse pointer, mobile user agent)."""
    if SELENIUM_MISSING:
        pytest.fail(f"selenium is not installed ({SELENIUM_MISSING}): run `make setup`", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--no-proxy-server"):
        options.add_argument(argument)
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": PHONE_390, "userAgent": PHONE_AGENT})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def current_query(driver) -> dict[str, str]:
    """The page address's query parameters."""
    return driver.execute_script("return Object.fromEntries(new URLSearchParams(location.search));")


def notice_text(driver) -> str:
    return driver.find_element(By.CSS_SELECTOR, "#notice").text.strip()


def test_a_search_has_an_address_that_back_reload_and_a_new_tab_repeat(browser, server, query_image, query_photo_id):
    hits = search_for_query(browser, server, query_image, query_photo_id)
    address = current_query(browser)
    assert set(address) == {"query"}, f"an upload's search is named by its kept image: {address}"
    first_url = browser.current_url

    # "More like this" on the second hit is a new entry in the history, named by the item.
    chosen = hits[1]["id"]
    button = browser.find_elements(By.CSS_SELECTOR, "#results .hit .more")[1]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()
    after = wait_for_new_results(browser, [hit["id"] for hit in hits], "More like this")
    assert after[0]["id"] == chosen
    assert current_query(browser) == {"item": chosen}, browser.current_url

    # Options are part of the address: a filter and how many.
    browser.find_element(By.CSS_SELECTOR, "#top-input").clear()
    browser.find_element(By.CSS_SELECTOR, "#top-input").send_keys("5")
    browser.find_element(By.CSS_SELECTOR, "#search-again").click()
    WebDriverWait(browser, SEARCH_TIMEOUT).until(lambda d: current_query(d).get("top") == "5")
    assert len(results_state(browser)["hits"]) == 5

    # Back: the upload's search again, from the kept image (no file chosen this time).
    five = [hit["id"] for hit in results_state(browser)["hits"]]
    browser.back()
    WebDriverWait(browser, SEARCH_TIMEOUT).until(lambda d: d.current_url == first_url)
    again = wait_for_new_results(browser, five, "going back")
    assert again[0]["id"] == query_photo_id, f"Back ranked {ranking(again)}"
    assert len(again) == len(hits), "Back restored how many hits the first search asked for"
    assert "Image from this address" in browser.find_element(By.CSS_SELECTOR, "#qcaption").text

    # The address in a fresh page (a bookmark, a shared link) gives the same answer.
    browser.get("about:blank")
    browser.get(first_url)
    fresh = wait_for_new_results(browser, [], "opening the address")
    assert [hit["id"] for hit in fresh] == [hit["id"] for hit in again]

    assert_no_console_errors(browser)

    # An address naming an image the server no longer keeps says so (its 404 is in the console).
    browser.get(server.base_url + "/?query=q0000000000000000")
    WebDriverWait(browser, 10).until(lambda d: "no longer kept" in notice_text(d))


def test_an_empty_answer_says_why(browser, server, query_image, query_photo_id):
    # A model the collection has no vectors of, chosen in the menu.
    status, info = server.get_json("/v1/server")
    assert status == 200
    unindexed = [model["name"] for model in info["models"] if model["name"] != info["default_model"]
                 and model["name"] == "efficientnet-lite0"]
    assert unindexed, f"the test needs efficientnet-lite0 installed beside the default: {info['models']}"
    browser.get(server.base_url + "/")
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.CSS_SELECTOR, "#model-field").is_displayed())
    Select(browser.find_element(By.CSS_SELECTOR, "#model-select")).select_by_value(unindexed[0])
    browser.find_element(By.CSS_SELECTOR, "#file-input").send_keys(str(query_image))
    WebDriverWait(browser, SEARCH_TIMEOUT).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results .empty .note"))
    note = browser.find_element(By.CSS_SELECTOR, "#results .empty .note")
    assert note.get_attribute("data-code") == "no_vectors_for_model"
    assert f"none embedded with model {unindexed[0]}" in note.text, note.text
    assert "no indexed images yet" not in browser.find_element(By.CSS_SELECTOR, "#results").text

    # A misspelt filter field is named, with the field that exists.
    status, _, body = server.request("POST", "/v1/collections/default/items?name=tagged.png&metadata=%7B%22color%22%3A%22red%22%7D",
                                     (server_process.photos_dir() / QUERY_PHOTO).read_bytes(), content_type="image/png")
    assert status in (200, 201), body
    browser.get(f"{server.base_url}/?item={query_photo_id}&filter=colour%3Dred")
    WebDriverWait(browser, SEARCH_TIMEOUT).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results .empty .note"))
    note = browser.find_element(By.CSS_SELECTOR, "#results .empty .note")
    assert 'did you mean "color"' in note.text, note.text
    assert_no_console_errors(browser)


def test_a_code_with_a_leading_zero_stays_text_in_the_filter(browser, server):
    browser.get(server.base_url + "/")
    parsed = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "import('/js/filter.js').then(m => done([m.parseFilter('code=007 price<50 size=1e3'), m.parseFilter('n=-3.5')]));")
    assert parsed == [{"code": "007", "price": {"$lt": 50}, "size": "1e3"}, {"n": -3.5}]


def test_uploads_keep_their_file_names(browser, server, tmp_path):
    sign_in(browser, server)
    photo = sorted(server_process.image_files(server_process.photos_dir()))[1]
    with Image.open(photo) as image:
        mirrored = image.convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    path = tmp_path / "mirrored holiday photo.jpg"
    mirrored.save(path, "JPEG", quality=90)
    browser.find_element(By.CSS_SELECTOR, "#upload-input").send_keys(str(path))
    WebDriverWait(browser, SEARCH_TIMEOUT).until(lambda d: "1 added" in d.find_element(By.CSS_SELECTOR, "#upload-status").text)
    item_id = server_process.item_id(path)
    status, item = server.get_json(f"/v1/collections/default/items/{item_id}")
    assert status == 200, item
    assert item["name"] == "mirrored holiday photo.jpg", item
    server.request("DELETE", f"/v1/collections/default/items/{item_id}")


def test_a_new_answer_clears_an_old_notice_and_a_new_collection_does_not_repeat_a_failed_search(browser, server, query_image, query_photo_id):
    sign_in(browser, server)
    # A search by an address the server may not fetch fails, with a notice.
    browser.find_element(By.CSS_SELECTOR, "#url-input").send_keys("http://127.0.0.1:9/cat.jpg")
    browser.find_element(By.CSS_SELECTOR, "#url-search").click()
    WebDriverWait(browser, SEARCH_TIMEOUT).until(lambda d: "Search failed" in d.find_element(By.CSS_SELECTOR, "#status").text)
    failed_notice = notice_text(browser)
    assert failed_notice, "the failure is shown as a notice"
    # Creating a collection now says so, and does not run the failed search again.
    requests_before = browser.execute_script("return performance.getEntriesByType('resource').filter(e => e.name.endsWith('/search')).length;")
    browser.find_element(By.CSS_SELECTOR, "#new-collection-input").send_keys("everyday-notices")
    browser.find_element(By.CSS_SELECTOR, "#new-collection-form button[type=submit]").click()
    try:
        WebDriverWait(browser, 10).until(lambda d: "created" in notice_text(d))
        requests_after = browser.execute_script("return performance.getEntriesByType('resource').filter(e => e.name.endsWith('/search')).length;")
        assert requests_after == requests_before, "creating a collection ran the failed search again"
        # Back to the default collection, and a search that works: the old notice goes.
        Select(browser.find_element(By.CSS_SELECTOR, "#collection-select")).select_by_value("default")
        hits = upload(browser, query_image)
        assert hits[0]["id"] == query_photo_id
        assert notice_text(browser) == "", f"an old notice stayed above the new answer: {notice_text(browser)!r}"
    finally:
        server.request("DELETE", "/v1/collections/everyday-notices")


def test_show_more_and_the_lightbox_step_through_hits_and_remove_one(browser, server, query_image, query_photo_id, tmp_path):
    # An extra copy to remove from the lightbox, so the photo set stays whole for other tests.
    extra_id = upload_smaller_copy(server, tmp_path, "chelsea-half.jpg", 1 / 2, quality=80)
    sign_in(browser, server)
    browser.find_element(By.CSS_SELECTOR, "#collapse-input").click()  # every copy shown, the extra one too
    try:
        show_more_and_step_through(browser, server, query_image, extra_id)
    finally:
        server.request("DELETE", "/v1/collections/default/feedback")  # the clicks on hits


def show_more_and_step_through(browser, server, query_image, extra_id):
    page = upload(browser, query_image)
    assert len(page) == 24, f"the page asks for 24 hits: {len(page)}"
    more = browser.find_element(By.CSS_SELECTOR, "#show-more")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", more)
    more.click()
    WebDriverWait(browser, SEARCH_TIMEOUT).until(lambda d: len(results_state(d)["hits"]) > 24)
    hits = results_state(browser)["hits"]
    assert [hit["id"] for hit in hits[:24]] == [hit["id"] for hit in page], "the first page's hits lead the longer list"
    assert current_query(browser).get("top") == "48"

    # The lightbox: Next and the arrow keys step through the hits.
    first = browser.find_element(By.CSS_SELECTOR, "#results .hit .thumb")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", first)
    first.click()
    caption = browser.find_element(By.CSS_SELECTOR, "#lb-caption")
    WebDriverWait(browser, 10).until(lambda d: caption.text.startswith(f"1 of {len(hits)}"))
    assert browser.find_element(By.CSS_SELECTOR, "#lb-prev").get_attribute("disabled") is not None
    browser.find_element(By.CSS_SELECTOR, "#lb-next").click()
    WebDriverWait(browser, 10).until(lambda d: caption.text.startswith(f"2 of {len(hits)}"))
    ActionChains(browser).send_keys("\ue014").perform()  # ArrowRight
    WebDriverWait(browser, 10).until(lambda d: caption.text.startswith(f"3 of {len(hits)}"))
    ActionChains(browser).send_keys("\ue012").perform()  # ArrowLeft
    WebDriverWait(browser, 10).until(lambda d: caption.text.startswith(f"2 of {len(hits)}"))

    # Remove the extra copy from its lightbox, after confirming.
    index = [hit["id"] for hit in hits].index(extra_id)
    browser.find_element(By.CSS_SELECTOR, "#lightbox form button").click()
    thumb = browser.find_element(By.CSS_SELECTOR, f"#results .hit[data-id='{extra_id}'] .thumb")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", thumb)
    thumb.click()
    WebDriverWait(browser, 10).until(lambda d: caption.text.startswith(f"{index + 1} of {len(hits)}"))
    browser.find_element(By.CSS_SELECTOR, "#lb-delete").click()
    WebDriverWait(browser, 10).until(lambda d: d.switch_to.alert)
    alert = browser.switch_to.alert
    assert "chelsea-half.jpg" in alert.text, alert.text
    alert.accept()
    WebDriverWait(browser, 10).until(lambda d: not d.find_elements(By.CSS_SELECTOR, f"#results .hit[data-id='{extra_id}']"))
    assert server.get_json(f"/v1/collections/default/items/{extra_id}")[0] == 404, "the item was not removed"
    assert caption.text.startswith(f"{index + 1} of {len(hits) - 1}"), caption.text
    assert_no_console_errors(browser)


def test_on_a_phone_the_results_come_into_view_and_the_drop_area_speaks_of_photos(phone, server, query_image, query_photo_id, tmp_path):
    phone.get(server.base_url + "/")
    width = phone.execute_script("return window.innerWidth;")
    assert width == PHONE_390["width"], f"the emulated phone is {width} px wide"
    drop_text = phone.find_element(By.CSS_SELECTOR, "#drop .drop-text").text
    assert "Ctrl+V" not in drop_text and "photo" in drop_text.lower(), drop_text
    hits = upload(phone, query_image)
    assert hits[0]["id"] == query_photo_id

    def status_in_view(driver):
        top = driver.execute_script("return document.querySelector('#status').getBoundingClientRect().top;")
        return -2 <= top < driver.execute_script("return window.innerHeight;") * 0.6  # scrolled to it: a fraction of a pixel off

    try:
        WebDriverWait(phone, 10).until(status_in_view)
    except TimeoutException:
        top, height = phone.execute_script(
            "return [document.querySelector('#status').getBoundingClientRect().top, window.innerHeight];")
        pytest.fail(f"the results were not brought into view after choosing an image: #status at {top:.0f} px "
                    f"of a {height} px window", pytrace=False)
    wait_for_images(phone)
    phone.execute_script("document.querySelector('#status').scrollIntoView({block: 'start'});")
    save_screenshot(phone, tmp_path, "browser-phone.png", "LOOKALIKE_SCREENSHOT_PHONE")
    scroll_width = phone.execute_script("return document.documentElement.scrollWidth;")
    assert scroll_width <= PHONE_390["width"] + 1, f"the page scrolls sideways: {scroll_width} px"
    assert_no_console_errors(phone)


def test_words_find_the_picture_they_describe_and_the_address_names_them(browser, server):
    server.index_folder(server_process.photos_dir(), model="words")
    coffee = server_process.item_id(server_process.photos_dir() / "skimage-coffee.png")
    browser.get(server.base_url + "/")
    box = browser.find_element(By.CSS_SELECTOR, "#text-input")
    box.send_keys("a cup of coffee")
    browser.find_element(By.CSS_SELECTOR, "#text-search").click()
    hits = wait_for_new_results(browser, [], "searching in words")
    assert hits[0]["id"] == coffee, f"'a cup of coffee' ranked {ranking(hits)}"
    assert current_query(browser) == {"text": "a cup of coffee"}
    assert "a cup of coffee" in browser.find_element(By.CSS_SELECTOR, "#qcaption").text
    assert not browser.find_element(By.CSS_SELECTOR, "#qframe").is_displayed(), "no picture is shown for a query in words"
    assert not browser.find_element(By.CSS_SELECTOR, "#region-tools").is_displayed()
    # The address alone repeats it.
    browser.get(server.base_url + "/?text=a+motorcycle")
    hits = wait_for_new_results(browser, [], "opening an address in words")
    motorcycle = server_process.item_id(server_process.photos_dir() / "skimage-motorcycle_left.png")
    assert hits[0]["id"] == motorcycle, f"'a motorcycle' ranked {ranking(hits)}"
    assert_no_console_errors(browser)


def labelled_product_store(tmp_path: Path) -> tuple[list[dict], Path]:
    """A store of the labelled product photos (test data), every other one with its `category`
    in its metadata; returns the photos' entries and the store's folder."""
    labels = server_process.data_dir() / "fixtures" / "categories" / "labels.jsonl"
    assert labels.is_file(), f"{labels} is missing: run `make test`, which builds the test data first"
    entries = [json.loads(line) for line in labels.read_text().splitlines() if line.strip()]
    metadata = tmp_path / "metadata.jsonl"
    metadata.write_text("".join(json.dumps({"path": e["path"], "category": e["category"]}) + "\n" for e in entries[::2]))
    store = tmp_path / "store"
    subprocess.run([str(server_process.lookalike_binary()), "add", *[e["path"] for e in entries], "--metadata", str(metadata),
                    "--store", str(store)], check=True, capture_output=True)
    return entries, store


def test_a_collections_tuned_model_is_offered_and_searches(browser, tmp_path):
    """A store tuned with `lookalike tune` before the server starts: its tuned model is in the
    menu, and choosing it searches with it (the upload finds its own image first)."""
    entries, store = labelled_product_store(tmp_path)
    binary = str(server_process.lookalike_binary())
    tuned = subprocess.run([binary, "tune", "--labels", "category", "--name", "shop", "--force", "--epochs", "2",
                            "--store", str(store)], capture_output=True, text=True)
    assert tuned.returncode == 0, tuned.stderr
    server = server_process.ServerProcess(store=store, index_root=tmp_path).start()
    try:
        browser.get(server.base_url + "/")
        name = "efficientnet-lite0-gem+shop"
        # (The menu is filled again when the collections arrive: read it in one step.)
        WebDriverWait(browser, 10).until(lambda d: name in d.execute_script(
            "return [...document.querySelectorAll('#model-select option')].map((o) => o.value)"))
        assert browser.find_element(By.CSS_SELECTOR, "#model-field").is_displayed()
        Select(browser.find_element(By.CSS_SELECTOR, "#model-select")).select_by_value(name)
        query = Path(entries[1]["path"])
        hits = upload(browser, query)
        assert hits[0]["id"] == server_process.item_id(query), f"the tuned model ranked {ranking(hits)}"
        assert f"model={name.replace('+', '%2B')}" in browser.current_url, browser.current_url
        assert_no_console_errors(browser)
    finally:
        server.stop()


def test_a_tuning_started_on_the_page_draws_its_curve_and_becomes_the_default(browser, tmp_path):
    """The Tune section: a field and a name start a tuning over the API; its validation curve is
    drawn as it trains (a line per head), the report says it was made, the collection's default
    model is then the tuned one (the model menu follows it and a search uses it without naming
    it), and "Remove…" forgets it, the installed default coming back."""
    entries, store = labelled_product_store(tmp_path)
    server = server_process.ServerProcess(store=store, index_root=tmp_path).start()
    name = "efficientnet-lite0-gem+shop"
    try:
        browser.get(server.base_url + "/#tune")
        WebDriverWait(browser, 10).until(lambda d: "efficientnet-lite0-gem" in d.find_element(By.CSS_SELECTOR, "#default-model-text").text)
        browser.find_element(By.CSS_SELECTOR, "#tune-labels").send_keys("category")
        browser.find_element(By.CSS_SELECTOR, "#tune-name").send_keys("shop")
        assert browser.find_element(By.CSS_SELECTOR, "#tune-default").is_selected(), "making it the default is on by default"
        browser.find_element(By.CSS_SELECTOR, "#tune-start").click()
        WebDriverWait(browser, 180).until(lambda d: "is made" in d.find_element(By.CSS_SELECTOR, "#tuning-report").text
                                          or "Failed" in d.find_element(By.CSS_SELECTOR, "#tuning-status").text)
        report = browser.find_element(By.CSS_SELECTOR, "#tuning-report").text
        assert f"{name} is made and is now this collection’s default model" in report, report
        lines = browser.find_elements(By.CSS_SELECTOR, "#tuning-curve polyline")
        assert len(lines) == 2, f"a line per head: {len(lines)}"
        assert all(len(line.get_attribute("points").split()) >= 2 for line in lines)
        assert browser.find_elements(By.CSS_SELECTOR, "#tuning-curve line.base"), "the base model's level is drawn"
        # The collection's models: the tuned one, marked default; the menu follows the default.
        WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#tuned-list li[data-model='{name}'] .state"))
        assert name in browser.find_element(By.CSS_SELECTOR, "#default-model-text").text
        assert browser.execute_script("return document.querySelector('#model-select').value") == name
        status, collection = server.get_json("/v1/collections/default")
        assert status == 200 and collection["default_model"] == name, collection
        # A search names no model in its address and is answered by the tuned model.
        query = Path(entries[1]["path"])
        hits = upload(browser, query)
        assert hits[0]["id"] == server_process.item_id(query), f"the tuned model ranked {ranking(hits)}"
        assert "model=" not in browser.current_url, browser.current_url
        answered_by = browser.find_element(By.CSS_SELECTOR, "#status").get_attribute("title")
        assert answered_by == f"Model {name}", answered_by
        # Removed after asking: the installed default is back.
        browser.find_element(By.XPATH, f"//ul[@id='tuned-list']/li[@data-model='{name}']//button[contains(., 'Remove')]").click()
        WebDriverWait(browser, 10).until(lambda d: d.switch_to.alert)
        browser.switch_to.alert.accept()
        WebDriverWait(browser, 10).until(lambda d: "No tuned models yet" in d.find_element(By.CSS_SELECTOR, "#tuned-list").text)
        assert "efficientnet-lite0-gem when" in browser.find_element(By.CSS_SELECTOR, "#default-model-text").text
        assert browser.execute_script("return document.querySelector('#model-select').value") == "efficientnet-lite0-gem"
        assert_no_console_errors(browser)
    finally:
        server.stop()


def test_a_folder_indexed_from_the_page_shows_its_progress_to_the_end(browser, tmp_path):
    """The "Index a folder on the server" card: a folder under the server's index root is indexed
    as a job whose progress the page follows (its event stream) to "Finished", and the collection
    then holds the folder's images."""
    folder = tmp_path / "photos"
    folder.mkdir()
    photos = server_process.image_files(server_process.photos_dir())[:3]
    for photo in photos:
        (folder / photo.name).write_bytes(photo.read_bytes())
    server = server_process.ServerProcess(store=tmp_path / "store", index_root=tmp_path).start()
    try:
        browser.get(server.base_url + "/#add")
        field = browser.find_element(By.CSS_SELECTOR, "#folder-input")
        WebDriverWait(browser, 10).until(lambda d: d.find_element(By.CSS_SELECTOR, "#folder-index").is_enabled())
        field.clear()
        field.send_keys(str(folder))
        browser.find_element(By.CSS_SELECTOR, "#folder-index").click()
        WebDriverWait(browser, 120).until(lambda d: d.find_element(By.CSS_SELECTOR, "#job-status").text.startswith(("Finished", "Failed")))
        status = browser.find_element(By.CSS_SELECTOR, "#job-status").text
        assert status.startswith("Finished: 3 of 3 files") and "3 added" in status, status
        assert browser.find_element(By.CSS_SELECTOR, "#job-progress").get_attribute("value") == "3"
        code, collection = server.get_json("/v1/collections/default")
        assert code == 200 and collection["items"] == 3, collection
        assert_no_console_errors(browser)
    finally:
        server.stop()


def test_shoppers_words_show_as_chips_that_narrow_the_results_and_can_be_dropped(browser, tmp_path):
    """A catalogue of dyed product photos with prices: "red bag under $100" shows the chips it was
    read into, every hit is what the API answers for the same words, dropping the price chip
    searches again without it; beside an uploaded photo, "but blue" narrows it to blue items."""
    folder = server_process.data_dir() / "fixtures" / "catalogue"
    assert (folder / "metadata.jsonl").is_file(), f"{folder} is missing: run `make test`, which builds the test data first"
    store = tmp_path / "store"
    binary = str(server_process.lookalike_binary())
    subprocess.run([binary, "add", "-r", str(folder / "images"), "--model", "words", "--model", "efficientnet-lite0-gem",
                    "--metadata", str(folder / "metadata.jsonl"), "--store", str(store)], check=True, capture_output=True)
    server = server_process.ServerProcess(store=store, index_root=tmp_path).start()

    def api(body: dict) -> dict:
        request = urllib.request.Request(server.base_url + "/v1/collections/default/search", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)

    def chips() -> list[str]:
        return browser.execute_script(
            "return [...document.querySelectorAll('#understood .chip.part > span:not(.swatch)')].map((c) => c.textContent)")

    try:
        browser.get(server.base_url + "/")
        browser.find_element(By.CSS_SELECTOR, "#text-input").send_keys("red bag under $100")
        browser.find_element(By.CSS_SELECTOR, "#text-search").click()
        hits = wait_for_new_results(browser, [], "searching in shoppers' words")
        WebDriverWait(browser, 10).until(lambda d: chips() == ["red", "price < 100"])
        save_screenshot(browser, tmp_path, "browser-words.png")
        understood = browser.find_element(By.CSS_SELECTOR, "#understood").text
        assert "bag" in understood and "null" not in understood, understood
        answer = api({"text": "red bag under $100", "top": 24})
        assert answer["parsed"]["text"] == "bag"
        assert [hit["id"] for hit in hits] == [hit["id"] for hit in answer["hits"]]
        assert all("red" in hit["colors"] and hit["metadata"]["price"] < 100 for hit in answer["hits"]), answer["hits"]
        # Dropping the price chip searches again with the words left.
        before = [hit["id"] for hit in hits]
        browser.find_element(By.CSS_SELECTOR, "#understood .chip.price .drop").click()
        WebDriverWait(browser, SEARCH_TIMEOUT).until(lambda d: chips() == ["red"])
        hits = wait_for_new_results(browser, before, "dropping the price chip")
        assert current_query(browser) == {"text": "red bag"}
        assert browser.find_element(By.CSS_SELECTOR, "#text-input").get_attribute("value") == "red bag"
        assert [hit["id"] for hit in hits] == [hit["id"] for hit in api({"text": "red bag", "top": 24})["hits"]]

        # Words no item can satisfy: no hits, and the reason, with the reading shown.
        box = browser.find_element(By.CSS_SELECTOR, "#text-input")
        box.clear()
        box.send_keys("a coat under $10 over $50")
        browser.find_element(By.CSS_SELECTOR, "#text-search").click()
        WebDriverWait(browser, SEARCH_TIMEOUT).until(lambda d: "at once" in d.find_element(By.CSS_SELECTOR, "#results").text)
        assert "at once" in browser.find_element(By.CSS_SELECTOR, "#understood").text
        assert results_state(browser)["hits"] == []

        # Words beside an uploaded photo narrow its search.
        photo = next(p for p in sorted((folder / "images").iterdir()) if p.name.startswith("sneaker") and p.stem.endswith("-red"))
        hits = upload(browser, photo)
        assert browser.find_element(By.CSS_SELECTOR, "#narrow-input").is_displayed()
        browser.find_element(By.CSS_SELECTOR, "#narrow-input").send_keys("but blue")
        before = [hit["id"] for hit in hits]
        browser.find_element(By.CSS_SELECTOR, "#search-again").click()
        hits = wait_for_new_results(browser, before, "narrowing an image search with words")
        WebDriverWait(browser, 10).until(lambda d: chips() == ["blue"])
        assert current_query(browser).get("words") == "but blue"
        names = {server_process.item_id(p): p.name for p in (folder / "images").iterdir()}
        blue = [names.get(hit["id"], "?") for hit in hits]
        assert sum(name.endswith("-blue.png") for name in blue) >= len(blue) * 0.8, blue
        assert_no_console_errors(browser)
    finally:
        server.stop()


def test_a_detail_finds_its_scene_through_tiles_and_the_card_outlines_the_part(browser, tmp_path):
    """A store added with region tiles: an uploaded corner of a photo finds the photo first, the
    card says it was found by a detail and outlines that part over the thumbnail where the API
    says it lies (the photo's bottom-right quarter); with tiles=false the API scores it lower."""
    photos = sorted(server_process.image_files(server_process.photos_dir()))[:12]
    store = tmp_path / "store"
    binary = str(server_process.lookalike_binary())
    added = subprocess.run([binary, "add", *map(str, photos), "--tiles", "--store", str(store)], capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    assert "12 images gained region tiles" in added.stdout, added.stdout
    source = next(p for p in photos if p.suffix.lower() == ".jpg")
    with Image.open(source) as opened:
        photo = opened.convert("RGB")
    w, h = photo.size
    query = tmp_path / "corner.jpg"
    photo.crop((w // 2, h // 2, w, h)).save(query, quality=90)
    server = server_process.ServerProcess(store=store, index_root=tmp_path).start()

    def api(tiles: bool) -> dict:
        request = urllib.request.Request(f"{server.base_url}/v1/collections/default/search?top=5&tiles={str(tiles).lower()}",
                                         data=query.read_bytes(), headers={"Content-Type": "image/jpeg"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)

    try:
        answer, whole = api(True), api(False)
        first = answer["hits"][0]
        assert first["id"] == server_process.item_id(source), f"with tiles: {ranking(answer['hits'])}"
        assert first["part"] == {"x": 0.5, "y": 0.5, "width": 0.5, "height": 0.5}, first["part"]
        mine = next((hit for hit in whole["hits"] if hit["id"] == first["id"]), None)
        assert mine is None or (mine["part"] is None and mine["score"] < first["score"]), (mine, first)

        browser.get(server.base_url + "/")
        hits = upload(browser, query)
        assert hits[0]["id"] == first["id"], f"the page ranked {ranking(hits)}"
        wait_for_images(browser)
        card = browser.find_element(By.CSS_SELECTOR, f'#results .hit[data-id="{first["id"]}"]')
        assert "detail" in card.find_element(By.CSS_SELECTOR, ".badge.detail").text
        thumb = card.find_element(By.CSS_SELECTOR, ".thumb img").rect
        box = card.find_element(By.CSS_SELECTOR, ".part-box").rect
        # The image is contained in the square thumbnail: the outline covers its bottom-right quarter.
        scale = min(thumb["width"] / w, thumb["height"] / h)
        shown_w, shown_h = w * scale, h * scale
        left = thumb["x"] + (thumb["width"] - shown_w) / 2
        top = thumb["y"] + (thumb["height"] - shown_h) / 2
        expected = {"x": left + shown_w / 2, "y": top + shown_h / 2, "width": shown_w / 2, "height": shown_h / 2}
        for key, value in expected.items():
            assert abs(box[key] - value) <= 2, f"the outline is at {box}, the bottom-right quarter at {expected}"
        save_screenshot(browser, tmp_path, "browser-tiles.png")
        assert_no_console_errors(browser)
    finally:
        server.stop()
