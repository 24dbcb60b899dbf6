"""The Python client generated from /openapi.json (openapi-python-client),
run against a live Gangway: create a session, read it, list it by reference,
its client view, cancel it, its timeline and webhook deliveries, and
problem responses.

Usage: GANGWAY_API_KEY=… client.py BASE_URL CLOSED_DOCUMENT (scripts/clients). Every
response is checked against the document with every object closed
(closed.py): its status must be documented, its content type too, and its
body must match the schema, formats included; the generated models must
hold every member the server sent (none left in `additional_properties`
except where the document leaves an object open). Any difference fails
the run.
"""

import json
import os
import re
import sys
import time
import uuid

import attrs
import httpx
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from gangway_api_client import AuthenticatedClient
from gangway_api_client.api.client import get_client_session
from gangway_api_client.api.sessions import (
    cancel_session,
    create_session,
    get_session,
    get_session_timeline,
    list_session_deliveries,
    list_sessions,
)
from gangway_api_client.api.workflows import list_workflows
from gangway_api_client.models import (
    CancelSession,
    ClientSession,
    CreatedSession,
    CreateSession,
    CreateSessionInput,
    Deliveries,
    Problem,
    Session,
    SessionPage,
    Timeline,
    Workflows,
)

BASE, DOC_PATH = sys.argv[1], sys.argv[2]
API_KEY = os.environ["GANGWAY_API_KEY"]
with open(DOC_PATH, encoding="utf-8") as f:
    DOC = json.load(f)
REGISTRY = Registry().with_resource(
    "urn:gangway", Resource.from_contents(DOC, default_specification=DRAFT202012)
)
# Path templates, literal paths first (`/v1/webhooks/incode` before a template).
ROUTES = sorted(
    (
        (re.compile("^" + re.sub(r"\\\{[^/]+\\\}", "[^/]+", re.escape(p)) + "$"), p)
        for p in DOC["paths"]
    ),
    key=lambda r: "{" in r[1],
)
failures = []
checked = []


def pointer(*parts):
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def validate(response: httpx.Response):
    """An httpx response hook: the answer against the closed document."""
    response.read()
    request = response.request
    method = request.method.lower()
    where = f"{request.method} {request.url.path} -> {response.status_code}"
    template = next((p for rx, p in ROUTES if rx.match(request.url.path)), None)
    op = DOC["paths"].get(template, {}).get(method) if template else None
    if op is None:
        failures.append(f"{where}: no such operation in the document")
        return
    status = str(response.status_code)
    answer = op["responses"].get(status) or op["responses"].get(status[0] + "XX")
    if answer is None:
        failures.append(f"{where}: status not documented")
        return
    base = pointer("paths", template, method, "responses", status)
    if "$ref" in answer:
        base = answer["$ref"].lstrip("#")
        answer = DOC["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    media = response.headers.get("content-type", "").split(";")[0].strip()
    content = answer.get("content", {})
    if content and media not in content:
        failures.append(f"{where}: content type {media!r}, documented {list(content)}")
        return
    if media.endswith("json"):
        schema = {"$ref": "urn:gangway#" + base + pointer("content", media, "schema")}
        validator = Draft202012Validator(
            schema, registry=REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        for e in validator.iter_errors(response.json()):
            failures.append(f"{where}: {e.json_path}: {e.message}")
    checked.append(where)


def strict(model, at="$"):
    """No member the server sent left unparsed, but in open objects."""
    if isinstance(model, list):
        for i, m in enumerate(model):
            strict(m, f"{at}[{i}]")
        return
    if not attrs.has(type(model)):
        return
    name = type(model).__name__
    # The document leaves these open: the workflow's input and its input
    # schema, a presentation.
    is_open = name.endswith("Input") or "InputSchema" in name or "Present" in name
    extra = getattr(model, "additional_properties", {})
    if extra and not is_open:
        failures.append(f"{at} ({name}): members not in the generated model: {sorted(extra)}")
    for field in attrs.fields(type(model)):
        if field.name != "additional_properties":
            strict(getattr(model, field.name), f"{at}.{field.name}")


def expect(result, cls, what):
    if not isinstance(result, cls):
        raise SystemExit(f"{what}: expected {cls.__name__}, got {result!r}")
    strict(result, what)
    return result


def eventually(what, probe, seconds=30):
    """Polls `probe` until it returns a truthy value, at most `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def main():
    hooks = {"event_hooks": {"response": [validate]}}
    api = AuthenticatedClient(
        base_url=BASE, token=API_KEY, raise_on_unexpected_status=True, httpx_args=hooks
    )
    workflows = expect(list_workflows.sync(client=api), Workflows, "listWorkflows")
    score = next(w for w in workflows.data if w.id == "http-score")
    assert score.version in score.versions and all(isinstance(v, int) for v in score.versions)

    reference = f"py-{uuid.uuid4().hex[:12]}"
    body = CreateSession(
        workflow="http-score",
        reference=reference,
        input_=CreateSessionInput.from_dict({"email": "python@example.com"}),
    )
    created = expect(create_session.sync(client=api, body=body), CreatedSession, "createSession")
    sid = created.id
    assert created.reference == reference and created.client_secret

    session = expect(get_session.sync(sid, client=api), Session, "getSession")
    assert session.id == sid and session.input_["email"] == "python@example.com"

    page = expect(list_sessions.sync(client=api, reference=reference), SessionPage, "listSessions")
    assert [s.id for s in page.data] == [sid], page

    browser = AuthenticatedClient(
        base_url=BASE, token=created.client_secret, raise_on_unexpected_status=True, httpx_args=hooks
    )
    view = expect(get_client_session.sync(sid, client=browser), ClientSession, "getClientSession")
    assert view.id == sid

    # Waiting for the score: its provider call has been made.
    eventually(
        "the session to wait",
        lambda: expect(get_session.sync(sid, client=api), Session, "getSession").status.value == "waiting",
    )
    canceled = expect(
        cancel_session.sync(sid, client=api, body=CancelSession(reason="python client")),
        Session,
        "cancelSession",
    )
    assert canceled.status.value == "ended" and canceled.outcome.value == "canceled", canceled

    timeline = expect(get_session_timeline.sync(sid, client=api), Timeline, "getSessionTimeline")
    kinds = [e.kind for e in timeline.entries]
    assert kinds[0] == "session.created" and "session.ended" in kinds, kinds

    def ended_delivered():
        d = expect(list_session_deliveries.sync(sid, client=api), Deliveries, "listSessionDeliveries")
        return any(x.event_type.value == "session.ended" and x.status.value == "delivered" for x in d.data)

    eventually("the session.ended delivery", ended_delivered)

    # Problems, parsed as such: an unknown session, a second cancel.
    missing = expect(get_session.sync("ses_unknown", client=api), Problem, "getSession 404")
    assert missing.status == 404, missing
    again = expect(cancel_session.sync(sid, client=api), Problem, "cancelSession 409")
    assert again.status == 409, again



if __name__ == "__main__":
    try:
        main()
    finally:
        if failures:
            print("\n".join(["responses that disagree with /openapi.json:", *failures]), file=sys.stderr)
    if failures:
        raise SystemExit(1)
    print(f"python client: {len(checked)} responses checked against the document")
