"""The dashboard in a real Chromium against a running `router demo --api` (embedded store).

Debian's chromium at /usr/bin/chromium, driven through playwright-core (the Python ``playwright`` package,
no browser download), headless, no sandbox, background networking off. The screenshots land in
artifacts/ (dashboard.png, dashboard-issue14.png, dashboard-floor500.png) for CI to keep.
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
from typing import Any

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
    # stuck after 1 s, so the Finnish contact below shows as stuck within the test; a floor sample every 2 s
    # so the depth and moments-of-truth charts have points soon; a rate limit that lets 500 agents be made
    env = {
        **os.environ,
        "ROUTER_ADMIN_KEY": KEY,
        "PYTHONUNBUFFERED": "1",
        "ROUTER_STUCK_AFTER_S": "1",
        "ROUTER_FLOOR_SAMPLE_S": "2",
        "ROUTER_API_RATE_PER_S": "2000",
        "ROUTER_API_RATE_BURST": "5000",
    }
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
            fi = _asks_for_person(api, "fi")
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
            "text": "my card was charged twice and the money is gone",
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
            c = _ok_json(api, f"/v1/contacts/{cid}")
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


CHARTS = ("waits", "depth", "mot", "ewt", "agents")
FLOOR = 500


def _ok_json(api: httpx.Client, path: str, tries: int = 20) -> Any:
    """GET ``path``'s JSON body, asserting a 200. On a loaded machine a contact read once came back as a
    body without the contact's fields (an error answer read as the contact, a KeyError with no status);
    a 503 (the store busy) is retried, anything else fails with its status and body."""
    for _ in range(tries):
        r = api.get(path)
        if r.status_code != 503:
            break
        time.sleep(0.25)
    assert r.status_code == 200, (path, r.status_code, r.text[:500])
    return r.json()


def _floor_agent(i: int) -> dict[str, object]:
    """Agent i of the 500: eq 1-5 in turn, every third also speaks German, named by its number."""
    return {
        "agent_id": f"f500-{i:03d}",
        "name": f"Floor agent {i}",
        "eq": i % 5 + 1,
        "languages": ["en", "de"] if i % 3 == 0 else ["en"],
        "capacity": {"chat": 1},
    }


def _floor_status(i: int) -> str:
    return ("offline", "available", "away", "offline")[i % 4]


def _asks_for_person(api: httpx.Client, language: str) -> str:
    """A new chat contact in ``language`` that asks for a person at once; returns its id."""
    cid = f"browser-{language}-{int(time.time())}"
    events = [
        {
            "type": "contact.started",
            "contact_id": cid,
            "channel": "chat",
            "customer": {"id": cid, "language": language},
        },
        {"type": "contact.human_requested", "contact_id": cid},
    ]
    assert api.post("/v1/events", json=events).status_code == 202
    return cid


def _announced_wait(api: httpx.Client) -> None:
    """An answered contact that had been announced a wait: a Swedish customer waits (nobody speaks Swedish,
    so the queued decision announces a wait), then a Swedish-speaking agent comes, is offered it and this
    test accepts as that agent would (the demo plays only its own agents)."""
    cid = _asks_for_person(api, "sv")
    deadline = time.monotonic() + 60
    announced: list[dict[str, object]] = []
    while not announced and time.monotonic() < deadline:
        items = api.get("/v1/decisions", params={"contact_id": cid}).json()["items"]
        announced = [d for d in items if d["action"] in ("queued", "callback_offer")]
        time.sleep(0.3)
    assert announced and announced[0]["estimated_wait_s"] is not None, f"{cid} was not announced a wait"
    agent = {
        "agent_id": "zz-sv",
        "name": "Swedish speaker",
        "eq": 4,
        "languages": ["sv"],
        "capacity": {"chat": 1},
    }
    assert api.post("/v1/agents", json=agent).status_code == 201
    assert api.put("/v1/agents/zz-sv/status", json={"status": "available"}).status_code == 202
    # the demo's offers time out in 3 s: accept each new one until an acceptance lands in the waits log
    accepted: set[str] = set()
    while time.monotonic() < deadline:
        series = api.get("/v1/stats/series", params={"window_s": 600, "interval_s": 60}).json()
        if series["announced"]:
            return
        offers = api.get("/v1/decisions", params={"contact_id": cid, "action": "offer"}).json()["items"]
        if offers and offers[0]["offer_id"] not in accepted:
            accepted.add(offers[0]["offer_id"])
            accept = {"type": "offer.accepted", "offer_id": offers[0]["offer_id"]}
            assert api.post("/v1/events", json=accept).status_code == 202
        time.sleep(0.2)
    raise AssertionError(f"{cid}: no announced wait answered ({len(accepted)} offers accepted)")


def test_dashboard_charts_and_a_floor_of_500_agents(demo: str) -> None:
    """Issue 15: the charts draw the last hour from the store with no network resource (waits by class,
    queue depth, moments of truth, announced against actual waits, each agent's CSAT with the suggested
    EQ, KPI tiles by class), and the agents table stays usable for 500 agents: filtered by name, status,
    EQ and language, sorted, paged 50 at a time."""
    sync_api = importlib.import_module("playwright.sync_api")  # a test dependency: missing is a failure
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install -y chromium (or set ROUTER_CHROMIUM)")
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    foreign: list[str] = []
    auth = {"Authorization": f"Bearer {KEY}"}
    origin = demo.rstrip("/")
    with (
        httpx.Client(base_url=origin, headers=auth, timeout=10) as api,
        sync_api.sync_playwright() as pw,
    ):
        _announced_wait(api)
        for i in range(FLOOR):
            assert api.post("/v1/agents", json=_floor_agent(i)).status_code == 201
        for i in range(FLOOR):
            if _floor_status(i) != "offline":
                r = api.put(f"/v1/agents/f500-{i:03d}/status", json={"status": _floor_status(i)})
                assert r.status_code == 202
        # moments of truth of its own, after the demo's: the per-minute chart counts them between samples
        mots = [
            e
            for k in range(3)
            for e in (
                {
                    "type": "contact.started",
                    "contact_id": f"browser-mot{k}",
                    "channel": "chat",
                    "customer": {"id": f"m{k}"},
                },
                {
                    "type": "contact.message",
                    "contact_id": f"browser-mot{k}",
                    "seq": 0,
                    "speaker": "customer",
                    "text": MOT_TEXT,
                },
            )
        ]
        assert api.post("/v1/events", json=mots).status_code == 202
        away = sum(1 for i in range(FLOOR) if _floor_status(i) == "away")
        deadline = time.monotonic() + 60
        while api.get("/v1/agents", params={"q": "floor agent", "status": "away"}).json()["total"] != away:
            assert time.monotonic() < deadline, "the workers did not apply the 500 agents' statuses"
            time.sleep(0.5)

        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 950})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: None if r.url.startswith(origin) else foreign.append(r.url))
            page.goto(demo)
            page.locator("#key").fill(KEY)
            page.keyboard.press("Enter")

            # every chart draws data points (the charts refresh every 10 s)
            page.wait_for_function(
                f"() => {list(CHARTS)}.every(n => Number(document.querySelector(`[data-testid=chart-${{n}}]`)"
                "?.dataset.points) > 0)",
                timeout=60_000,
            )
            for name, marks in (
                ("waits", "circle.pt"),
                ("depth", "circle.pt"),
                ("mot", "rect.bar"),
                ("ewt", "circle.dot"),
                ("agents", "g.agent-row"),
            ):
                svg = page.locator(f'[data-testid="chart-{name}"]')
                assert svg.get_attribute("role") == "img"
                assert svg.locator(marks).count() >= 1, name
                described = svg.get_attribute("aria-labelledby") or ""
                assert (
                    f"chart-{name}-d" in described and (svg.locator("desc").text_content() or "").strip()
                ), name
                assert svg.locator("text").count() >= 3, f"{name}: axis labels"
            ewt = page.locator('[data-testid="chart-ewt"] desc').text_content() or ""
            assert "mean absolute error" in ewt
            assert page.locator('[data-testid="chart-agents"] g.agent-row').count() <= 15
            tiles = page.locator('#kpis .kpi-group[data-class="mot"] dd')
            assert tiles.count() == 6 and int(tiles.first.inner_text().split()[0]) > 0
            assert page.locator('#kpis .kpi-group[data-class="routine"]').is_visible()

            # the agents table: one page of 50, never the whole floor
            rng = page.locator('[data-testid="agents-range"]')
            page.wait_for_function(
                "() => /of [0-9]+ agents/.test(document.querySelector('#ag-range').textContent)"
            )
            total = int(rng.inner_text().split(" of ")[1].split()[0])
            assert total >= FLOOR and page.locator("#agents tbody tr").count() == 50

            def shows(text: str) -> None:
                page.wait_for_function(
                    f"() => document.querySelector('#ag-range').textContent === {text!r}", timeout=15_000
                )

            # by name (a part of it, any case)
            page.locator('[data-testid="filter-q"]').fill("FLOOR AGENT 42")
            shows("1–11 of 11 agents")  # 42 and 420-429
            ids = page.locator("#agents tbody tr").evaluate_all("rows => rows.map(r => r.dataset.agent)")
            assert ids == ["f500-042", *(f"f500-{i}" for i in range(420, 430))]

            # by EQ and language, on top of the name
            page.locator('[data-testid="filter-q"]').fill("floor agent")
            page.locator('[data-testid="filter-eq"]').select_option("5")
            page.locator('[data-testid="filter-language"]').select_option("de")
            expect = [f"f500-{i:03d}" for i in range(FLOOR) if i % 5 == 4 and i % 3 == 0]
            shows(f"1–{len(expect)} of {len(expect)} agents")
            rows = page.locator("#agents tbody tr")
            assert rows.evaluate_all("rows => rows.map(r => r.dataset.agent)") == expect
            assert set(rows.locator("input.eq").evaluate_all("xs => xs.map(x => x.value)")) == {"5"}

            # by status, paged: 125 away agents are three pages
            page.locator('[data-testid="filter-eq"]').select_option("")
            page.locator('[data-testid="filter-language"]').select_option("")
            page.locator('[data-testid="filter-status"]').select_option("away")
            shows(f"1–50 of {away} agents")
            assert set(rows.locator(".badge").all_inner_texts()) == {"away"}
            page.locator("#ag-next").click()
            shows(f"51–100 of {away} agents")
            page.locator("#ag-next").click()
            shows(f"101–{away} of {away} agents")
            assert page.locator("#ag-next").is_disabled() and rows.count() == away - 100
            page.locator("#ag-prev").click()
            shows(f"51–100 of {away} agents")

            # sorted by EQ, then the other way; a new sort starts at the first page
            eq_header = page.locator('#agents thead th[data-sort="eq"]')
            eq_header.locator("button").click()
            shows(f"1–50 of {away} agents")
            assert eq_header.get_attribute("aria-sort") == "ascending"
            page.wait_for_function("() => document.querySelector('#agents tbody input.eq').value === '1'")
            eq_header.locator("button").click()
            page.wait_for_function("() => document.querySelector('#agents tbody input.eq').value === '5'")
            assert eq_header.get_attribute("aria-sort") == "descending"
            eqs = [int(x) for x in rows.locator("input.eq").evaluate_all("xs => xs.map(x => x.value)")]
            assert eqs == sorted(eqs, reverse=True) and rows.count() == 50

            page.locator("#f-clear").click()
            shows(f"1–50 of {total} agents")
            page.screenshot(path=str(ARTIFACTS / "dashboard-floor500.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert foreign == [], f"the dashboard fetched something from elsewhere: {foreign}"
