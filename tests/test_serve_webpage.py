"""The web page at / driven in headless Chromium: choose an image, see the top-k bars.

Needs Debian's ``chromium`` + ``chromium-driver`` (.ci/apt-packages.txt) and selenium (hubcls[test]);
skips with the reason otherwise.
"""
from __future__ import annotations

import os
import shutil
import threading
import time

import pytest
from _hub_helpers import MODEL, free_port, jpeg_bytes, photo, write_weights

pytest.importorskip("paddle")
pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("selenium", reason="selenium is not installed (pip install 'hubcls[test]')")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                       reason="headless Chromium + chromedriver not installed (apt-get install chromium chromium-driver)"),
    pytest.mark.slow,
    pytest.mark.network,
]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1100,700"]


@pytest.fixture()
def server(tmp_path):
    import hubcls.hub as hub
    from hubcls.hub.serving import create_app

    w = write_weights(tmp_path / "w.pdparams")
    module = hub.Module(name=MODEL, weights=str(w))
    app = create_app({"mobilenetv3_small_x0_35_imagenet": module})
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.time() + 60
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started
    yield f"http://127.0.0.1:{port}", module
    srv.should_exit = True
    t.join(30)


def _chromium(tmp_path, *extra_flags):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in FLAGS:
        opts.add_argument(f)
    for f in extra_flags:
        opts.add_argument(f)
    opts.add_argument(f"--user-data-dir={tmp_path / 'chrome-profile'}")
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


@pytest.mark.parametrize("page,ready", [("/docs", ".opblock-summary-path"), ("/redoc", "[data-section-id]")])
def test_api_pages_render_without_a_network(server, tmp_path, page, ready):
    """/docs (Swagger UI) and /redoc render every route from files served by hubcls: Chromium runs with
    every host name except 127.0.0.1 unresolvable (a CDN asset would leave the page blank), and the
    page loads nothing from anywhere else."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base, _ = server
    driver = _chromium(tmp_path, "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1")
    try:
        driver.set_page_load_timeout(60)
        driver.get(base + page)
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ready))
        text = driver.find_element(By.TAG_NAME, "body").text
        assert "/predict/{module_name}" in text and "/v1/models/{name}:predict" in text
        # every script, stylesheet and data request came from hubcls (ReDoc's decorative "powered by"
        # logo is an <img> it links from its CDN: offline it is simply not shown)
        srcs = driver.execute_script("return performance.getEntriesByType('resource')"
                                     ".filter(e => e.initiatorType !== 'img').map(e => e.name)")
        assert srcs and all(u.startswith(base) for u in srcs), srcs
        assert any("/docs-assets/" in u for u in srcs) and any(u.endswith("/openapi.json") for u in srcs)
    finally:
        driver.quit()


def test_drop_an_image_and_see_the_top_k_bars(server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base, module = server
    img_path = tmp_path / "coffee.jpg"
    img_path.write_bytes(jpeg_bytes(photo(1)))
    expected = module.predict([str(img_path)], top_k=5)[0]

    driver = _chromium(tmp_path)
    try:
        driver.set_page_load_timeout(60)
        driver.get(base + "/")
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
        options = [o.text for o in driver.find_elements(By.CSS_SELECTOR, "#model option")]
        assert options and MODEL in options[0]
        # the page says which model answers, from which weights (the file's name, never its path) and
        # over how many classes
        info = driver.find_element(By.ID, "modelinfo").text
        assert MODEL in info and "weights: w.pdparams" in info and "1000 classes" in info, info
        assert str(tmp_path) not in info
        # the hidden <input type=file> behind the drop zone (what a drop or a click feeds)
        driver.find_element(By.ID, "file").send_keys(str(img_path))
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "done")
        time.sleep(0.5)  # let the bar transition settle before measuring
        rows = driver.find_elements(By.CSS_SELECTOR, "#bars .row")
        labels = [r.find_element(By.CSS_SELECTOR, ".label").text for r in rows]
        pcts = [r.find_element(By.CSS_SELECTOR, ".prob").text for r in rows]
        widths = [r.find_element(By.CSS_SELECTOR, ".bar").value_of_css_property("width") for r in rows]
        assert labels == list(expected)
        assert pcts == [f"{p * 100:.1f}%" for p in expected.values()]
        px = [float(w.rstrip("px")) for w in widths]
        assert px == sorted(px, reverse=True) and px[0] > px[-1]  # bars ordered by probability
        assert driver.find_element(By.CSS_SELECTOR, "#drop img").is_displayed()
        shot = os.environ.get("HUBCLS_SCREENSHOT") or str(tmp_path / "serve_page.png")
        driver.save_screenshot(shot)
        assert os.path.getsize(shot) > 5000
    finally:
        driver.quit()
