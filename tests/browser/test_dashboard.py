"""The dashboard in a real Chromium against a running `router demo --api` (embedded store).

Debian's chromium at /usr/bin/chromium, driven through playwright-core (the Python ``playwright`` package,
no browser download), headless, no sandbox, background networking off. The screenshot lands in
artifacts/dashboard.png for CI to keep.
"""

from __future__ import annotations

import importlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

CHROMIUM = os.environ.get("ROUTER_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KEY = "browser-test-admin-key"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
MOT_TEXT = "My card was stolen and someone is emptying my account, I am panicking"


@pytest.fixture(scope="module")
def demo() -> Iterator[str]:
    """`router demo --api` on the in-process store; yields the dashboard URL."""
    # stuck after 1 s, so the Finnish contact below shows as stuck within the test
    env = {**os.environ, "ROUTER_ADMIN_KEY": KEY, "PYTHONUNBUFFERED": "1", "ROUTER_STUCK_AFTER_S": "1"}
    env.pop("ROUTER_REDIS_URL", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "router",
            "demo",
            "--api",
            "--port",
            "0",
            "--embedded",
            "fakeredis",
            "--scorer",
            "lexicon",
            "--contacts",
            "240",
            "--seed",
            "11",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    url = None
    deadline = time.monotonic() + 90
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        m = re.match(r"dashboard: (http://\S+)", line.strip())
        if m:
            url = m.group(1)
            break
    try:
        assert url, "router demo --api did not print its URL"
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()


def test_dashboard_edit_eq_and_see_a_moment_of_truth(demo: str) -> None:
    sync_api = importlib.import_module("playwright.sync_api")  # a test dependency: missing is a failure
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install -y chromium (or set ROUTER_CHROMIUM)")
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    auth = {"Authorization": f"Bearer {KEY}"}
    with (
        httpx.Client(base_url=demo.rstrip("/"), headers=auth, timeout=10) as api,
        sync_api.sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 950})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(demo)

            # the key is typed once, kept in session storage, and survives a reload
            page.locator("#key").fill(KEY)
            page.keyboard.press("Enter")
            row = page.locator('#agents tbody tr[data-agent="a10"]')
            row.wait_for(timeout=20_000)
            assert page.evaluate("sessionStorage.getItem('mot-router.key')") == KEY
            page.reload()
            row.wait_for(timeout=20_000)
            assert page.locator("#login").is_hidden()

            # edit agent a10's EQ in place with the keyboard only: focus, replace, Enter (PATCH with If-Match)
            before = api.get("/v1/agents/a10").json()
            assert before["eq"] == 2
            eq_input = page.get_by_label("EQ of agent a10", exact=True)
            eq_input.focus()
            page.keyboard.press("Control+A")
            page.keyboard.type("5")
            page.keyboard.press("Enter")
            row.locator(".note.saved").wait_for(timeout=15_000)
            after = api.get("/v1/agents/a10").json()
            assert after["eq"] == 5 and after["version"] == before["version"] + 1
            audit = api.get("/v1/audit", params={"agent_id": "a10"}).json()["items"][0]
            assert audit["before"]["eq"] == 2 and audit["after"]["eq"] == 5 and audit["who"] == "admin"

            # a moment of truth arrives (posted as a platform would) and appears in the live feed
            cid = f"browser-mot-{int(time.time())}"
            events = [
                {
                    "type": "contact.started",
                    "contact_id": cid,
                    "channel": "chat",
                    "customer": {"id": f"u-{cid}"},
                },
                {
                    "type": "contact.message",
                    "contact_id": cid,
                    "seq": 0,
                    "speaker": "customer",
                    "text": MOT_TEXT,
                },
            ]
            assert api.post("/v1/events", json=events).status_code == 202
            item = page.locator(f'#feed > li[data-contact="{cid}"]').first
            item.wait_for(timeout=30_000)
            assert item.locator("ul.reasons li").count() >= 1
            assert "mot_" in item.inner_text()
            # the sparkline is drawn (a flat line has an empty box, so "attached", not "visible")
            item.locator("svg.spark polyline").wait_for(state="attached", timeout=10_000)
            assert page.locator("#c-feed").inner_text() == "live"
            assert int(page.locator('[data-testid="deadletter-count"]').inner_text()) >= 3
            page.locator("#queues tbody tr").first.wait_for()

            # a customer in a language nobody on the floor speaks asks for a person: free agents pass them by,
            # and the queues panel lists them as stuck (issue 14: it showed every agent free and a 0 s wait)
            fi = f"browser-fi-{int(time.time())}"
            events = [
                {
                    "type": "contact.started",
                    "contact_id": fi,
                    "channel": "chat",
                    "customer": {"id": fi, "language": "fi"},
                },
                {"type": "contact.human_requested", "contact_id": fi},
            ]
            assert api.post("/v1/events", json=events).status_code == 202
            stuck = page.locator(f'#stuck li[data-contact="{fi}"]')
            stuck.wait_for(timeout=45_000)
            assert (
                stuck.get_attribute("data-code") == "stuck" and "without the language" in stuck.inner_text()
            )
            assert (
                int(page.locator('#queues tbody tr[data-queue="general"] td.stuck-count').inner_text()) >= 1
            )
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []


def test_dashboard_long_ids_refused_edits_invisible_characters_and_dead_letters(demo: str) -> None:
    """Issue 14: a 64-character agent id broke the layout; a refused (412) edit looked saved; bidi overrides
    in a transcript were applied; the dead-letter list could not be browsed."""
    sync_api = importlib.import_module("playwright.sync_api")  # a test dependency: missing is a failure
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install -y chromium (or set ROUTER_CHROMIUM)")
    errors: list[str] = []
    auth = {"Authorization": f"Bearer {KEY}"}
    long_id = "agent-" + "x" * 52 + f"{int(time.time()) % 1_000_000:06d}"
    assert len(long_id) == 64
    with (
        httpx.Client(base_url=demo.rstrip("/"), headers=auth, timeout=10) as api,
        sync_api.sync_playwright() as pw,
    ):
        assert api.post("/v1/agents", json={"agent_id": long_id, "eq": 2}).status_code == 201
        # 25 valid events the workers dead-letter (no such agents): more than one page of dead letters
        ghosts = [{"type": "agent.status", "agent_id": f"ghost{i}", "status": "away"} for i in range(25)]
        assert api.post("/v1/events", json=ghosts).status_code == 202
        cid = f"browser-bidi-{int(time.time())}"
        bidi = "refund to account \u202e1234 5678\u202c now\u200b please"
        events = [
            {"type": "contact.started", "contact_id": cid, "channel": "chat", "customer": {"id": f"u-{cid}"}},
            {"type": "contact.message", "contact_id": cid, "seq": 0, "speaker": "customer", "text": bidi},
        ]
        assert api.post("/v1/events", json=events).status_code == 202
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 950})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(demo)
            page.locator("#key").fill(KEY)
            page.keyboard.press("Enter")

            # the long id is cut with an ellipsis, whole in its tooltip, and the panel does not overflow
            row = page.locator(f'#agents tbody tr[data-agent="{long_id}"]')
            row.wait_for(timeout=20_000)
            cell = row.locator(".agent-id")
            assert cell.get_attribute("title") == long_id
            assert cell.evaluate("e => getComputedStyle(e).textOverflow") == "ellipsis"
            assert cell.evaluate("e => e.scrollWidth > e.clientWidth")  # cut
            panel = page.locator(".agents-panel")
            assert panel.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "the agents panel overflows"

            # an edit made while someone else changed the agent is refused, and shows the current value
            eq_input = page.get_by_label(f"EQ of agent {long_id}", exact=True)
            eq_input.focus()
            page.keyboard.press("Control+A")
            page.keyboard.type("4")
            current = api.get(f"/v1/agents/{long_id}")
            r = api.patch(
                f"/v1/agents/{long_id}/skills", json={"eq": 1}, headers={"If-Match": current.headers["etag"]}
            )
            assert r.status_code == 200
            page.wait_for_timeout(2_600)  # a refresh passes while the supervisor is still editing
            page.keyboard.press("Enter")
            note = row.locator(".note.failed")
            note.wait_for(timeout=15_000)
            assert "refused" in note.inner_text() and "it is 1 now" in note.inner_text()
            assert eq_input.input_value() == "1"
            assert api.get(f"/v1/agents/{long_id}").json()["eq"] == 1  # the other edit stands
            page.wait_for_timeout(2_600)  # and the next refresh keeps saying so
            assert "refused" in row.locator(".note").inner_text()

            # invisible characters in a transcript are shown as escapes, never applied
            page.wait_for_function(
                f"() => fetch('/v1/contacts/{cid}', {{headers: {{Authorization: 'Bearer {KEY}'}}}})"
                ".then(r => r.ok)",
                timeout=20_000,
            )
            page.evaluate(f"showContact('{cid}')")
            said = page.locator("#contact-body .transcript .said").first
            said.wait_for(timeout=10_000)
            text = said.inner_text()
            assert "\\u202E1234 5678\\u202C now\\u200B please" in text
            assert not any(c in text for c in "\u202e\u202c\u200b")
            page.keyboard.press("Escape")

            # the dead letters can be browsed, page by page, and opened
            page.wait_for_function(
                "() => Number(document.querySelector('[data-testid=deadletter-count]').textContent) >= 25",
                timeout=30_000,
            )
            page.locator("#dl-newest").click()
            items = page.locator("#deadletters li")
            page.wait_for_function("() => document.querySelectorAll('#deadletters li').length === 20")
            first_page = items.first.get_attribute("data-deadletter")
            page.locator("#dl-older").click()
            page.wait_for_function(
                f"() => document.querySelector('#deadletters li')?.dataset.deadletter !== '{first_page}'"
            )
            assert "page 2" in page.locator("#dl-page").inner_text()
            page.locator("#dl-newer").click()
            page.wait_for_function(
                f"() => document.querySelector('#deadletters li')?.dataset.deadletter === '{first_page}'"
            )
            items.first.locator("button").click()
            page.locator("#contact-body pre.payload").wait_for(timeout=10_000)
            assert "agent.status" in page.locator("#contact-body pre.payload").inner_text()
            page.screenshot(path=str(ARTIFACTS / "dashboard-issue14.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []


def test_dashboard_shows_a_voice_turns_arousal(demo: str) -> None:
    """Issue 16: a voice turn's arousal (here the platform's own cue) raised its intensity; the live feed
    names ``acoustic_arousal`` and the transcript shows the voice beside the words' own intensity."""
    sync_api = importlib.import_module("playwright.sync_api")  # a test dependency: missing is a failure
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install -y chromium (or set ROUTER_CHROMIUM)")
    errors: list[str] = []
    auth = {"Authorization": f"Bearer {KEY}"}
    cid = f"browser-voice-{int(time.time())}"
    cues = {"arousal": 0.95, "valence": -0.5, "source": "acme"}
    events = [
        {"type": "contact.started", "contact_id": cid, "channel": "voice", "customer": {"id": f"u-{cid}"}},
        {"type": "contact.message", "contact_id": cid, "seq": 0, "speaker": "customer", "text": "hello"},
        {
            "type": "contact.message",
            "contact_id": cid,
            "seq": 1,
            "speaker": "customer",
            "text": "you charged me twice for the same thing",
            "acoustic": cues,
        },
    ]
    with (
        httpx.Client(base_url=demo.rstrip("/"), headers=auth, timeout=10) as api,
        sync_api.sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 950})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(demo)
            page.locator("#key").fill(KEY)
            page.keyboard.press("Enter")
            page.locator("#agents tbody tr").first.wait_for(timeout=20_000)
            assert api.post("/v1/events", json=events).status_code == 202
            page.wait_for_function(
                f"() => fetch('/v1/contacts/{cid}', {{headers: {{Authorization: 'Bearer {KEY}'}}}})"
                ".then(r => r.ok ? r.json() : null).then(c => c && c.transcript.length === 2)",
                timeout=20_000,
            )
            c = api.get(f"/v1/contacts/{cid}").json()
            assert c["moment_of_truth"]
            item = page.locator(f'#feed > li[data-contact="{cid}"]').first
            item.wait_for(timeout=30_000)
            assert "acoustic_arousal" in item.inner_text()
            page.evaluate(f"showContact('{cid}')")
            chip = page.locator("#contact-body .transcript .voice")
            chip.wait_for(timeout=10_000)
            assert chip.count() == 1
            words = c["transcript"][1]["text_intensity"]
            assert chip.inner_text().strip() == f"· voice 0.95 (words {words})"
            assert chip.get_attribute("title") == "vocal arousal from acme"
            page.keyboard.press("Escape")
        finally:
            browser.close()
    assert errors == []
