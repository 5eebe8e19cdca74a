"""End-to-end test of Signoff's web inbox in a real headless Chromium.

Run by crates/signoff/tests/browser.rs against a real `signoff serve` (auth
on, a workflow configured); it may also be run by hand:

    SIGNOFF_URL=... SIGNOFF_REVIEWER_TOKEN=... SIGNOFF_AGENT_TOKEN=... \
    SIGNOFF_ADMIN_TOKEN=... python tests/python/browser/inbox.py [SCREENSHOT_DIR]

Chromium is Debian's (/usr/bin/chromium, or $SIGNOFF_CHROMIUM); Playwright's
own browser download is never used. Every step asserts what the reviewer
sees and, through the API, what the server recorded.
"""

import json
import os
import sys
import urllib.error
import urllib.request

from playwright.sync_api import expect, sync_playwright

URL = os.environ["SIGNOFF_URL"].rstrip("/")
REVIEWER = os.environ["SIGNOFF_REVIEWER_TOKEN"]
AGENT = os.environ["SIGNOFF_AGENT_TOKEN"]
ADMIN = os.environ["SIGNOFF_ADMIN_TOKEN"]
CHROMIUM = os.environ.get("SIGNOFF_CHROMIUM", "/usr/bin/chromium")
SHOTS = sys.argv[1] if len(sys.argv) > 1 else None
# Generous: CI runs this beside other tests on two cores, and a redraft
# starts two Python processes.
TIMEOUT = 20_000
expect.set_options(timeout=TIMEOUT)


def api(method, path, token, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(URL + path, data=data, method=method)
    request.add_header("Authorization", "Bearer " + token)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def propose(title, action, labels=None):
    status, body = api(
        "POST",
        "/v1/requests",
        AGENT,
        {"title": title, "description": "Proposed by the test agent.",
         "proposed_action": action, "labels": labels or {}, "expires_in": "2h"},
    )
    assert status == 201, body
    return body["id"]


def request(id):
    status, body = api("GET", f"/v1/requests/{id}", ADMIN)
    assert status == 200, body
    return body


def row(page, id):
    return page.locator(f'#rows tr.row[data-id="{id}"]')


def main():
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(viewport={"width": 1200, "height": 860})
        context.set_default_timeout(TIMEOUT)
        page = context.new_page()
        errors = []
        events_cut = False
        page.on("pageerror", lambda error: errors.append(str(error)))
        def console(message):
            # The refused sign-ins above answer 401 and 403 on purpose.
            expected = "status of 401" in message.text or "status of 403" in message.text
            # The live stream is cut on purpose below.
            expected = expected or (events_cut and "ERR_FAILED" in message.text)
            if message.type == "error" and not expected:
                errors.append(message.text)

        page.on("console", console)

        # No session: the inbox sends the browser to sign in.
        page.goto(URL + "/ui/inbox")
        expect(page).to_have_url(URL + "/ui/login")

        # A wrong token is refused, with the reason on the page.
        page.fill("#token", "so_nothing_here")
        page.click("#sign-in")
        expect(page.locator("#error")).to_contain_text("Sign-in refused")

        # The agent's token does not open the inbox.
        page.fill("#token", AGENT)
        page.click("#sign-in")
        expect(page.locator("#error")).to_contain_text("cannot review")

        # The reviewer signs in and sees an empty inbox.
        page.fill("#token", REVIEWER)
        page.click("#sign-in")
        expect(page).to_have_url(URL + "/ui/inbox")
        expect(page.locator("#who")).to_have_text("rita")
        expect(page.locator("footer.keys")).to_contain_text("approve")
        cookies = {c["name"]: c for c in context.cookies()}
        session = cookies["signoff_session"]
        assert session["httpOnly"] and session["sameSite"] == "Strict", session

        # A request proposed elsewhere appears without a reload.
        first = propose("Refund order 1042", {"refund": {"order": 1042, "amount": 42.5}},
                        {"team": "support"})
        expect(row(page, first)).to_be_visible()
        expect(row(page, first)).to_contain_text("team=support")
        expect(row(page, first)).to_contain_text("expires in")

        # Keyboard: Enter opens the selected request; a focuses the comment.
        page.keyboard.press("Enter")
        expect(page).to_have_url(URL + f"/ui/requests/{first}")
        expect(page.locator("#action .k").first).to_have_text('"refund"')
        expect(page.locator("#action .n")).to_have_text(["42.5", "1042"])
        page.keyboard.press("a")
        expect(page.locator("#approve-comment")).to_be_focused()
        page.keyboard.type("Within policy.")
        page.keyboard.press("Enter")
        expect(page.locator("#notice")).to_have_text("Approved.")
        expect(page.locator("#status")).to_have_text("approved")
        expect(page.locator("#timeline")).to_contain_text("approved by rita")
        expect(page.locator("#timeline")).to_contain_text("created by bot")
        decided = request(first)
        assert decided["status"] == "approved", decided
        assert decided["decision"]["reviewer"] == "rita", decided
        assert decided["decision"]["comment"] == "Within policy.", decided

        # Reject another, with a reason (required).
        second = propose("Delete stale accounts", {"sql": "DELETE FROM accounts WHERE idle > 365"})
        page.goto(URL + f"/ui/requests/{second}")
        page.keyboard.press("r")
        expect(page.locator("#reject-reason")).to_be_focused()
        page.keyboard.press("Enter")  # empty: the browser refuses to send it
        assert request(second)["status"] == "pending"
        page.keyboard.type("Needs a dry run first")
        page.keyboard.press("Enter")
        expect(page.locator("#status")).to_have_text("rejected")
        expect(page.locator("#decision-reason")).to_have_text("Needs a dry run first")
        rejected = request(second)
        assert rejected["decision"]["rejection_reason"] == "Needs a dry run first", rejected

        # Approve a third with edits; bad JSON is caught before sending.
        third = propose("Raise card limit", {"card": "c-77", "limit": 5000})
        page.goto(URL + f"/ui/requests/{third}")
        page.keyboard.press("e")
        expect(page.locator("#edited-action")).to_be_focused()
        page.fill("#edited-action", '{"card": "c-77", "limit": ')
        page.click("#approve-edited")
        expect(page.locator("#edit-error")).to_contain_text("Not valid JSON")
        assert request(third)["status"] == "pending"
        page.fill("#edited-action", '[1, 2]')
        page.click("#approve-edited")
        expect(page.locator("#edit-error")).to_contain_text("JSON object")
        page.fill("#edited-action", '{"card": "c-77", "limit": 3000}')
        page.fill("#edit-comment", "3000 is enough")
        page.click("#approve-edited")
        expect(page.locator("#status")).to_have_text("approved")
        expect(page.locator("#edited")).to_contain_text("3000")
        expect(page.locator("#timeline")).to_contain_text("with edits")
        edited = request(third)
        assert edited["decision"]["edited_action"] == {"card": "c-77", "limit": 3000}, edited

        # A workflow redraft: the rejected attempt's reason, the diff, the
        # validator's score.
        status, run = api("POST", "/v1/workflows/limits/runs", AGENT, {"input": {"team": "finance"}})
        assert status == 201, run
        page.goto(URL + "/ui/inbox")
        attempt1 = page.locator("#rows tr.row", has_text="Expense limit update")
        expect(attempt1).to_have_count(1)
        attempt1.locator("a").click()
        expect(page.locator("#validation")).to_contain_text("88")
        page.fill("#reject-reason", "5000 is too high for meals")
        page.click("#reject")
        expect(page.locator("#status")).to_have_text("rejected")
        page.goto(URL + "/ui/inbox")
        attempt2 = page.locator("#rows tr.row", has_text="Expense limit update")
        expect(attempt2).to_have_count(1)
        attempt2.locator("a").click()
        expect(page.locator("#redraft")).to_contain_text("attempt 2")
        expect(page.locator("#previous-reason")).to_have_text("5000 is too high for meals")
        expect(page.locator("#diff .del")).to_contain_text("5000")
        expect(page.locator("#diff .add")).to_contain_text("2000")
        expect(page.locator("#score")).to_have_text("88")
        redraft_url = page.url

        # Requests decided elsewhere leave the inbox live; a label filter.
        finance = propose("Quarterly budget transfer", {"transfer": 120000}, {"team": "finance"})
        sales = propose("Discount for ACME", {"discount": 0.15}, {"team": "sales"})
        gone = propose("Rotate API keys", {"rotate": ["billing"]}, {"team": "platform"})
        page.goto(URL + "/ui/inbox")
        expect(row(page, gone)).to_be_visible()
        status, _ = api("POST", f"/v1/requests/{gone}/approve", ADMIN, {"comment": "done elsewhere"})
        assert status == 200
        expect(row(page, gone)).to_have_count(0)

        # A request proposed before the page's live stream connects still
        # shows up: the page looks again whenever the stream (re)opens.
        events_cut = True
        page.route("**/ui/events", lambda route: route.abort())
        page.goto(URL + "/ui/inbox")
        late = propose("Renew the TLS certificate", {"renew": "api.example.com"})
        expect(row(page, late)).to_have_count(0)
        page.unroute("**/ui/events")
        expect(row(page, late)).to_be_visible()
        if SHOTS:
            page.mouse.move(0, 0)
            page.screenshot(path=os.path.join(SHOTS, "inbox.png"), full_page=True)
            page.goto(redraft_url)
            page.screenshot(path=os.path.join(SHOTS, "request.png"), full_page=True)
            page.goto(URL + "/ui/inbox")
        page.fill("#label-filter", "team=finance")
        page.press("#label-filter", "Enter")
        expect(row(page, finance)).to_be_visible()
        expect(row(page, sales)).to_have_count(0)

        # The decided tab lists decided requests.
        page.goto(URL + "/ui/inbox?status=rejected")
        expect(row(page, second)).to_be_visible()

        # Sign out: the session is gone.
        page.click("#sign-out")
        expect(page).to_have_url(URL + "/ui/login")
        page.goto(URL + "/ui/inbox")
        expect(page).to_have_url(URL + "/ui/login")

        assert not errors, errors
        browser.close()
    print("browser test passed")


if __name__ == "__main__":
    main()
