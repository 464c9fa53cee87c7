"""The web UI in a real browser (Debian's chromium driven by Playwright), on the real app with the
offline model: a chat turn that runs 3D-Var (tool step, inline figure, answer, metrics, latest-run
card), a tool run from the Tools tab, the Runs tab of the same browser session, a page reload
that keeps the session, typeset maths in lecture answers and a question queued behind a run.

The tests share one page (one Gradio session) and run in order: later ones check what the
earlier ones made. Screenshots go to ``$DALAB_ARTIFACTS`` or ``artifacts/``.
Needs ``/usr/bin/chromium``: ``make browser`` installs it (Playwright's own download does not work
here).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1500, "height": 1000}
WAIT_MS = 60_000


def run_dir_name(tool: str) -> str:
    """A run folder's name, as a regex: <date>-<time>-<µs>-<tool>."""
    return r"\d{8}-\d{6}-\d+-" + re.escape(tool)


# JS predicates for wait_for_function: at least one <img> under the element has loaded.
IMG_LOADED = "el => [...el.querySelectorAll('img')].some(i => i.complete && i.naturalWidth > 0)"
# ... and no (finite) transition is still running, e.g. an accordion sliding open.
SETTLED = ("() => document.getAnimations().every(a => a.playState !== 'running'"
           " || a.effect.getTiming().iterations === Infinity)")


def artifacts_dir() -> Path:
    out = Path(os.environ.get("DALAB_ARTIFACTS") or ROOT / "artifacts")
    out.mkdir(parents=True, exist_ok=True)
    return out


def screenshot(page, name: str) -> Path:
    page.wait_for_function(SETTLED)
    path = artifacts_dir() / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, f"{path} is suspiciously small"
    print(f"\nscreenshot: {path}")
    return path


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` to install Debian's chromium for this test")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover — part of the test dependencies
        pytest.fail("playwright is not installed in the venv: run `make install-test`")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def page(browser, ui_url):
    """One page, hence one Gradio session, for the whole module; JS errors and failed requests for
    files are collected so each test can check there were none."""
    context = browser.new_context(viewport=VIEWPORT)
    pg = context.new_page()
    pg.set_default_timeout(WAIT_MS)
    pg.problems = []  # type: ignore[attr-defined]
    pg.on("pageerror", lambda exc: pg.problems.append(f"JS error: {exc}"))
    pg.on("response", lambda r: pg.problems.append(f"HTTP {r.status} for {r.url}")
          if r.status >= 400 and "/gradio_api/file" in r.url else None)
    pg.goto(ui_url)
    yield pg
    context.close()


@pytest.fixture(scope="module")
def made_runs() -> dict[str, str]:
    """Run folder names made in this browser session, by tool (filled by the first two tests)."""
    return {}


def no_problems(page) -> None:
    assert page.problems == [], "the page reported problems:\n" + "\n".join(page.problems)


def tab(page, name: str):
    return page.get_by_role("tab", name=name, exact=True)


def panel_of(locator):
    """The innermost tab panel holding ``locator``."""
    return locator.locator("xpath=ancestor::div[@role='tabpanel'][1]")


def test_chat_runs_3dvar_with_step_figure_answer_and_metrics(page, made_runs):
    from playwright.sync_api import expect

    expect(page.locator("#header")).to_contain_text("Answering: offline model")
    chat = page.locator("#chat")
    box = page.locator("#message textarea")
    expect(box).to_be_editable()
    box.fill("run a 3D-Var cycle")
    box.press("Enter")

    # The user's message, then the tool step: a collapsible "thought" whose title names the tool.
    expect(chat.get_by_test_id("user")).to_have_text("run a 3D-Var cycle")
    step = chat.locator("[role=button]", has_text="run_3dvar_cycle")
    expect(step).to_be_visible(timeout=WAIT_MS)
    expect(step).to_contain_text("done", timeout=WAIT_MS)           # status, with its duration
    # The final answer: the last assistant message.
    answer = chat.get_by_test_id("bot").last
    expect(answer).to_contain_text("analysis RMSE", timeout=WAIT_MS)
    expect(answer).to_contain_text("Key numbers: rmse_analysis =")
    # The figure, inline in the chat, really loaded from the server.
    page.wait_for_function(IMG_LOADED, arg=chat.element_handle(), timeout=WAIT_MS)
    assert chat.locator("img[src*='timeseries.png']").count() == 1
    expect(box).to_have_value("")                                     # the box is cleared for the next message

    # Expanding the step shows the arguments the tool was called with.
    expect(chat).not_to_contain_text("arguments:")
    step.click()
    expect(chat).to_contain_text("arguments: defaults")

    # Beside the chat: the metrics of that run and the latest-run card.
    metrics = page.locator("#metrics")
    expect(metrics).to_contain_text("rmse_analysis")
    found = re.search(r"rmse_analysis\s+(\d+\.\d+)", metrics.inner_text())
    assert found, metrics.inner_text()
    rmse = float(found.group(1))
    assert 0 < rmse < 1, rmse
    in_answer = re.search(r"analysis RMSE (\d+\.\d+)", answer.inner_text())
    assert in_answer and abs(float(in_answer.group(1)) - rmse) < 1e-3, "the answer and the table disagree"
    card = page.locator("#latest-run")
    expect(card).to_contain_text("run_3dvar_cycle")
    run = re.search(run_dir_name("run_3dvar_cycle"), card.inner_text())
    assert run, card.inner_text()
    made_runs["run_3dvar_cycle"] = run.group(0)
    # The run record to download: reproduce.py, served by the app, re-runs this very tool.
    link = page.locator("a[href$='/reproduce.py']")
    expect(link).to_have_count(1)
    expect(link).to_be_visible()
    code = page.request.get(link.get_attribute("href"))
    assert code.ok, code.status
    assert "run_tool('run_3dvar_cycle', args, workspace=WORKSPACE)" in code.text()   # in the session's workspace
    assert "/sessions/" not in code.text()                             # no server path, no session id

    no_problems(page)
    screenshot(page, "ui_chat_3dvar.png")


def test_tools_tab_runs_origen_oscillator_without_the_llm(page, made_runs):
    from playwright.sync_api import expect

    tab(page, "Tools").click()
    tab(page, "run_origen_oscillator").click()
    button = page.get_by_role("button", name="Run run_origen_oscillator", exact=True)
    expect(button).to_be_visible()
    expect(panel_of(button)).to_contain_text("n_cycles")               # the form, from the args schema
    panel = page.locator("#tool-result")                              # every form's result shows here
    expect(panel).not_to_contain_text("Done:")
    button.click()

    expect(panel).to_contain_text("Done: run_origen_oscillator in", timeout=WAIT_MS)
    expect(panel).not_to_contain_text("Error:")
    status = panel.inner_text()
    run = re.search(run_dir_name("run_origen_oscillator"), status)
    assert run, status
    made_runs["run_origen_oscillator"] = run.group(0)
    expect(panel).to_contain_text("rmse_final")                       # its metrics table
    gallery = panel.locator("button[aria-label^='Thumbnail']")
    expect(gallery.first).to_be_visible()
    page.wait_for_function(IMG_LOADED, arg=panel.element_handle(), timeout=WAIT_MS)
    made_runs["origen_figures"] = str(gallery.count())

    no_problems(page)
    screenshot(page, "ui_tools_origen.png")


def test_runs_tab_lists_this_sessions_runs_and_shows_their_figures(page, made_runs):
    from playwright.sync_api import expect

    assert {"run_3dvar_cycle", "run_origen_oscillator"} <= made_runs.keys(), (
        "run the whole module: this test checks the runs the two tests before it made in the same browser session")
    tab(page, "Runs").click()
    where = page.get_by_text("Runs of this browser session")
    expect(where).to_be_visible()
    expect(where).to_contain_text(": 2.")
    panel = panel_of(where)
    for name in (made_runs["run_3dvar_cycle"], made_runs["run_origen_oscillator"]):
        expect(panel.get_by_role("gridcell", name=name, exact=True)).to_be_visible()

    # Pick the ORIGEN run: its summary, reproduce.py and the same figures as in the Tools tab.
    picker = panel.get_by_role("combobox", name="run", exact=True)
    picker.click()
    page.get_by_role("option", name=made_runs["run_origen_oscillator"], exact=True).click()
    expect(panel).to_contain_text("Reproduce it:")
    expect(panel).to_contain_text("run_tool('run_origen_oscillator', args, workspace=WORKSPACE)")
    thumbs = panel.locator("button[aria-label^='Thumbnail']")
    expect(thumbs).to_have_count(int(made_runs["origen_figures"]))
    expect(panel.locator("img[src*='rmse_per_cycle.png']")).to_have_count(1)
    page.wait_for_function(IMG_LOADED, arg=panel.element_handle(), timeout=WAIT_MS)

    no_problems(page)
    screenshot(page, "ui_runs.png")


def test_a_reload_keeps_the_session_and_the_conversation(page, made_runs):
    from playwright.sync_api import expect

    assert made_runs, "run the whole module: this test reloads the session the tests before it made"
    page.reload()
    chat = page.locator("#chat")
    expect(chat.get_by_test_id("user").first).to_have_text("run a 3D-Var cycle")     # the transcript is back
    page.wait_for_function(IMG_LOADED, arg=chat.element_handle(), timeout=WAIT_MS)
    expect(page.locator("#latest-run")).to_contain_text(made_runs["run_origen_oscillator"])  # the Tools run
    tab(page, "Runs").click()
    expect(page.get_by_text("Runs of this browser session")).to_contain_text(": 2.")
    # ... and so is the conversation's memory: a follow-up reuses the previous run's tool
    tab(page, "Chat").click()
    box = page.locator("#message textarea")
    box.fill("again with sigma_o 0.5")
    box.press("Enter")
    step = chat.locator("[role=button]", has_text="run_3dvar_cycle").last
    expect(step).to_contain_text("done", timeout=WAIT_MS)
    expect(chat.get_by_test_id("bot").last).to_contain_text("sigma_o=0.5")
    no_problems(page)


def test_lecture_answers_render_their_maths(page):
    from playwright.sync_api import expect

    box = page.locator("#message textarea")
    box.fill("what is the scalar kalman gain?")
    box.press("Enter")
    answer = page.locator("#chat").get_by_test_id("bot").last
    expect(answer).to_contain_text("Sources: [corpus/", timeout=WAIT_MS)
    expect(answer).to_contain_text("[corpus/da_basics.md §")
    expect(answer.locator(".katex").first).to_be_visible()            # $…$ typeset, not raw dollars
    assert "$\\sigma" not in answer.inner_text()
    no_problems(page)
    screenshot(page, "ui_chat_lecture_maths.png")


def test_a_question_sent_during_a_run_is_answered_after_it(page):
    from playwright.sync_api import expect

    chat = page.locator("#chat")
    before = chat.get_by_test_id("user").count()
    l63_steps = chat.locator("[role=button]", has_text="run_origen_lorenz63")
    steps_before = l63_steps.count()
    box = page.locator("#message textarea")
    # long enough (a few seconds) that the second question surely arrives while it runs
    first_q = "run origen on lorenz 63 with 5000 steps and 100 cycles"
    box.fill(first_q)
    box.press("Enter")
    expect(l63_steps).to_have_count(steps_before + 1)               # its step started
    box.fill("why does 3D-Var with a fixed B plateau?")
    box.press("Enter")
    expect(box).to_have_value("")                                   # taken, not lost
    expect(page.get_by_text("Your question is queued")).to_be_visible()
    assert "(dalab variant) over 5000 steps" not in chat.inner_text()               # ... while the first was still running
    users = chat.get_by_test_id("user")
    expect(users).to_have_count(before + 2, timeout=WAIT_MS)
    assert [u.inner_text() for u in users.all()[-2:]] == [first_q,
                                                           "why does 3D-Var with a fixed B plateau?"]
    expect(chat.get_by_test_id("bot").last).to_contain_text("Sources: [corpus/", timeout=WAIT_MS)
    text = chat.inner_text()
    first = text.index("ORIGEN on Lorenz-63 (dalab variant) over 5000 steps")
    assert first < text.index("Sources: [corpus/", first)            # answered in the order sent
    no_problems(page)


def test_figures_open_full_size_and_none_is_shown_twice_in_a_turn(page):
    """generate → train → reconstruct at the training's own held-out time: the reconstruction would
    repeat the training's figure, so it is referred to instead; every figure fills the chat's width
    and a click opens the PNG at full resolution. Then the page's other display rules."""
    from playwright.sync_api import expect

    from toyda.obs2obs import Obs2ObsConfig
    from toyda.observations import TRAINING_DATASET_DEFAULTS

    n = TRAINING_DATASET_DEFAULTS["n_snapshots"] - 1                  # transitions of the first trajectory
    held_out = n - max(1, round(Obs2ObsConfig().test_fraction * n))   # its first held-out (test) transition
    chat = page.locator("#chat")
    box = page.locator("#message textarea")
    box.fill(f"Generate observations, train the obs2obs network for 2 epochs, then reconstruct the field at "
             f"snapshot {held_out}")
    box.press("Enter")
    step = chat.locator("[role=button]", has_text="reconstruct_field")
    expect(step).to_contain_text("done", timeout=3 * WAIT_MS)
    expect(chat).to_contain_text("is the same figure as", timeout=WAIT_MS)
    expect(chat.locator("img[src*='reconstruction_heldout.png']")).to_have_count(1)
    expect(chat.locator("img[src$='/reconstruction.png']")).to_have_count(0)       # not shown a second time
    expect(chat.locator("img[src*='sat_prediction.png']")).to_have_count(1)

    # Full size: the figure spans the chat's width (not a 300 px thumbnail) ...
    figure = chat.locator("img[src*='reconstruction_heldout.png']")
    figure.scroll_into_view_if_needed()
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=figure.element_handle())
    shown, column = figure.bounding_box(), chat.bounding_box()
    natural = figure.evaluate("el => [el.naturalWidth, el.naturalHeight]")
    assert shown["width"] > 0.75 * column["width"] and shown["height"] > 400, (shown, column)
    assert abs(shown["width"] / shown["height"] - natural[0] / natural[1]) < 0.02      # not distorted
    # ... and a click opens the PNG itself at full resolution.
    with page.context.expect_page() as opened:
        figure.click()
    full = opened.value
    full.wait_for_load_state()
    assert full.url == figure.get_attribute("src")
    assert full.evaluate("() => [document.images[0].naturalWidth, document.images[0].naturalHeight]") == natural
    full.close()

    # The chat follows the window's height.
    tall = chat.bounding_box()["height"]
    page.set_viewport_size({"width": VIEWPORT["width"], "height": VIEWPORT["height"] + 300})
    page.wait_for_function("([el, h]) => Math.abs(el.getBoundingClientRect().height - h - 300) < 5",
                           arg=[chat.element_handle(), tall])
    page.set_viewport_size(VIEWPORT)
    # The summary is said once (in the answer), read-only downloads have no ×, metrics say what they mean.
    assert chat.inner_text().count("Reconstructed the full field") == 1
    assert page.locator(".read-only-files .label-clear-button").count() >= 3
    for button in page.locator(".read-only-files .label-clear-button").all():
        expect(button).to_be_hidden()
    expect(page.locator("#metrics")).to_contain_text("root-mean-square error against the truth")
    no_problems(page)
    screenshot(page, "ui_chat_full_size_figures.png")

    # Deleting a run asks first; cancelling keeps it.
    tab(page, "Runs").click()
    # the listing is refreshed when the tab opens: wait for this turn's newest run before counting
    expect(page.locator("#runs-table")).to_contain_text("reconstruct_field", timeout=WAIT_MS)
    where = page.get_by_text("Runs of this browser session")
    runs = re.search(r": (\d+)\.", where.inner_text()).group(1)
    page.get_by_role("button", name="Delete the selected run").click()
    expect(page.locator("#confirm-delete")).to_contain_text("cannot be undone")
    page.locator("#confirm-delete-no").click()
    expect(page.locator("#confirm-delete")).to_be_hidden()
    expect(where).to_contain_text(f": {runs}.")
    # A new conversation also clears the Latest-run card.
    tab(page, "Chat").click()
    page.get_by_role("button", name="New conversation").click()
    expect(page.locator("#latest-run")).to_contain_text("No run yet")
    expect(chat.get_by_test_id("bot")).to_have_count(0)
    no_problems(page)
