#!/usr/bin/env python3
"""Writes the seed corpus (fuzz/corpus/<target>/) from the repository's
workflows, examples, the default config and payloads the tests and the
simulators send. Run again after adding samples; the files are committed."""
import glob, json, os, re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")
SEP = b"\xff"


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def parts(flags, *ps):
    return bytes([flags]) + SEP.join(p.encode() if isinstance(p, str) else p for p in ps)


def j(v):
    return json.dumps(v)


workflows = sorted(
    glob.glob(os.path.join(ROOT, "workflows", "**", "*.yaml"), recursive=True)
    + glob.glob(os.path.join(ROOT, "examples", "*.yaml"))
    + glob.glob(os.path.join(ROOT, "crates", "gangway", "tests", "workflows", "*.yaml"))
)
exprs, strings = set(), set()
for path in workflows:
    text = open(path, encoding="utf-8").read()
    rel = os.path.relpath(path, ROOT).replace("/", "_")
    write("workflow", rel, text)
    for m in re.finditer(r"when:\s*(.+)", text):
        exprs.add(m.group(1).strip())
    for m in re.finditer(r"\$\{([^}\n]+)\}", text):
        exprs.add(m.group(1).strip())
    for line in text.splitlines():
        if "${" in line and ":" in line:
            strings.add(line.split(":", 1)[1].strip())

exprs |= {
    "input.n + 1 > 41 && input.s.startsWith('t')",
    "has(input.map.a) ? input.map.a.b.c : 'none'",
    "input.list.exists(x, x == 1)",
    "size(input.list) * 2",
    "[1, 2, 3].map(x, x * x).filter(y, y > 1)",
    "{'a': 1}['a'] == 1u",
    "input.big + 1",
    "-input.neg - 2",
    "input.s.matches('^t.*$')",
    "double(input.n) / 0.0",
    "timestamp('2026-01-01T00:00:00Z') + duration('1h')",
    "string(input.f) + b'x'",
    "input.u * 2u",
}
for i, e in enumerate(sorted(exprs)):
    write("expr", f"e{i:03}", parts(0, e, j({"n": 1, "s": "t", "list": [1]})))

strings |= {
    "/v1/sessions/${input.s}/score",
    "${input.map} and ${input.list}",
    "$${not an expression}",
    "${ {'k': '}'}.k }",
    "/a/${input.s}/b?c",
}
for i, s in enumerate(sorted(strings)):
    write("template", f"t{i:03}", parts(0, s, j({"s": "../../admin", "n": 5})))
write("template", "object", parts(1, "x", j({"path": "/p/${input.s}", "query": {"q": "${input.n}"}})))

write("config", "default.toml", open(os.path.join(ROOT, "config.default.toml"), encoding="utf-8").read())
write("config", "services.toml", parts(0, """
[http.services.score]
base_url = "http://127.0.0.1:9/api"
headers = { X-Api-Key = "${env:X}" }

[http.webhooks.score]
service = "score"
secret = "0123456789abcdef0123"
signature_header = "x-score-signature"
signature_prefix = "sha256="
timestamp_header = "x-score-timestamp"
tolerance = "5m"
reference_field = "id"
event_field = "status"

[rate_limits]
trusted_proxies = ["10.0.0.0/8"]
""", "GANGWAY_SERVER__LISTEN=127.0.0.1:0", "s3cret-key"))

body = j({"id": "ref-1", "status": "completed", "event_id": "evt-1", "score": 70})
write("webhook_http", "signed_ts", parts(0b011, "", "1767225600", body, "1767225600"))
write("webhook_http", "signed_no_ts", parts(0b101, "", "", body, "0"))
write("webhook_http", "forged", parts(0b010, "sha256=00ff", "1767225600", body, "1767225600"))
write("webhook_http", "far_ts", parts(0b011, "", "-9223372036854775808", body, "1767225600"))

write("incode", "token_request", parts(0, "Basic Z2F0ZTphLWxvbmctY2xpZW50LXNlY3JldA==", "grant_type=client_credentials&scope=x", "1767225600", "", ""))
for st in ["ONBOARDING_FINISHED", "ID_VALIDATION_FINISHED", "USER_CANCELLED", "MANUAL_REVIEW_APPROVED", "SOMETHING_NEW"]:
    write("incode", f"webhook_{st.lower()}", parts(0b001, "", "", "1767225600", "", j({"interviewId": "64f0c0ffee", "onboardingStatus": st, "clientId": "c"})))
write("incode", "header_secret", parts(0b010, "Bearer gwit_1_00", "", "1767225600", "header-secret-000000", j({"interviewId": "i", "onboardingStatus": "ONBOARDING_FINISHED"})))

write("dialog360", "channel_running", parts(0, "token=t0k3n&x=1", j({"id": "evt_1", "event": "channel_running", "data": {"channel_id": "ch_1", "client_id": "cl_1", "status": "running"}}), "[ch_1,ch_2]"))
write("dialog360", "client_created", parts(0, "token=a%20b", j({"event": "client_created", "data": {"id": "cl_1", "client": {"id": "cl_1", "partner_payload": "ses_abc"}}}), ""))
write("dialog360", "redirect", parts(0, "?client=cl_1&channels=[ch_1,ch_2]&revoked=[]&state=d360st_abc", j({"state": "d360st_abc", "query": "client=cl_1&channels=%5Bch_1%5D"}), "[\"a\", b]"))
write("dialog360", "redirect_value", parts(0, "client=", j({"state": "d360st_x", "client": "cl_9", "channels": ["ch_1"], "revoked": "[ch_2]"}), "[]"))

for kind in ["progress", "result", "error"]:
    write("oih", f"callback_{kind}", parts(0, j({"requestId": "a1b2c3", "seq": 1, "type": kind, "data": {"step": 1}, "message": "thank you"}), "hook-secret"))
write("oih", "callback_bad_seq", parts(1, j({"requestId": "a1b2c3", "seq": 100001, "type": "result", "data": None}), "flow_1"))

for kind in ["verified", "requires_input", "processing", "canceled", "redacted", "created"]:
    ev = {"id": "evt_1", "object": "event", "type": f"identity.verification_session.{kind}", "livemode": False,
          "data": {"object": {"id": "vs_1", "object": "identity.verification_session", "status": kind,
                              "last_error": {"code": "document_expired", "reason": "expired"} if kind == "requires_input" else None}}}
    write("stripe", f"signed_{kind}", parts(0b001, "", j(ev), "1767225600", "1767225600"))
write("stripe", "header_rotation", parts(0, "t=1767225600,v1=00ff,v1=" + "ab" * 32 + ",v0=1", j({"id": "evt_2"}), "1767225600"))
write("stripe", "header_extreme", parts(0b010, "t=-9223372036854775808,v1=zz", "{}", "9223372036854775807"))

odm = {"odmVersion": "3.0", "sessionId": "ock_a", "persons": [{"role": "applicant", "income": {"grossYearly": 52000, "netMonthly": 3100},
       "employment": [{"employer": "ACME", "contract": "permanent", "startDate": "2015-04-01", "grossYearlyIncome": 52000}],
       "fixedCosts": {"rentMonthly": 900, "insuranceMonthly": 150, "otherMonthly": 80},
       "debts": [{"type": "loan", "creditor": "Bank", "outstanding": 12000, "monthlyPayment": 250}]}],
       "documents": [{"type": "payslip", "id": "d1", "url": "https://x/d1", "expiresAt": "2026-01-01T00:00:00Z"}]}
write("ockto", "odm", parts(0, j(odm)))
write("ockto", "status", parts(0, j({"status": "DATA_AVAILABLE", "qrCode": "data:image/png;base64,AA=="})))
write("ockto", "no_income", parts(0, j({"persons": [{"role": "partner"}], "status": "SCANNED"})))
write("ockto", "error_401", parts(3, j({"error": {"code": "AUTH", "message": "bad password"}}), "120"))
write("ockto", "error_429", parts(6, "not json", "Wed, 21 Oct 2015 07:28:00 GMT"))

write("chat", "hello_say", parts(0, j({"type": "hello", "secret": "cs_x", "last_id": 12}), j({"type": "say", "text": "/me", "client_id": "c-1"}), "", ""))
write("chat", "run_flow", parts(0, j({"type": "hello"}), j({"type": "say", "text": "/run flow_1 {\"customer_id\": \"c-42\"}", "client_id": "c-2"}), "", ""))
write("chat", "ask", parts(0, "{}", "not json", "/ask what is this?", j([{"name": "ask", "run": "x", "args": "text"}, {"name": "me", "run": "y", "remember": ["k"], "input": {"a": 1}}])))
write("chat", "help", parts(0, "", j({"type": "say", "text": "  /help  ", "client_id": "c"}), "/status", ""))
print("seed corpus written to", OUT)
