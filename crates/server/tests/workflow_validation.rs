//! Validator messages, snapshot-tested: they are the user interface of
//! `gangway validate`.

use gangway_core::workflow::parse;
use gangway_server::providers::catalog;

fn render(src: &str) -> String {
    match parse(src, catalog()) {
        Ok(_) => "ok".to_string(),
        Err(d) => d.render("wf.yaml"),
    }
}

#[test]
fn shipped_workflows_validate() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../workflows");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("workflows/ exists") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let src = std::fs::read_to_string(&path).expect("readable");
            assert_eq!(render(&src), "ok", "{}", path.display());
            n += 1;
        }
    }
    assert!(n >= 1);
}

#[test]
fn broken_workflow_reports_every_problem_with_position() {
    let src = include_str!("fixtures/broken.yaml");
    insta::assert_snapshot!(render(src));
}

#[test]
fn yaml_syntax_error_has_position() {
    insta::assert_snapshot!(render("id: x\nversion: 1\nsteps:\n  a: [unclosed\n"));
}

#[test]
fn duplicate_keys_and_bad_durations() {
    let src = "id: x\nversion: 1\nsteps:\n  w:\n    wait:\n      a.b: e\n    timeout: soon\n    on_timeout: e\n  e:\n    end: expired\n    reason: r\n  e:\n    end: failed\n    reason: r\n";
    insta::assert_snapshot!(render(src));
}

#[test]
fn top_level_problems() {
    insta::assert_snapshot!(render("id: Bad Id\nversion: zero\nextra: 1\nsteps: {}\n"));
}

#[test]
fn a_url_path_may_not_carry_a_query() {
    let src = "id: x\nversion: 1\nsteps:\n  c:\n    call: http.request\n    with:\n      service: s\n      path: /v1/x/${input.id}?expand=1\n    next: e\n  e:\n    end: approved\n    reason: r\n";
    assert_eq!(
        render(src),
        "wf.yaml:8:13: `path` is a URL path and may not contain `?`; put query parameters in `query`"
    );
    let poll = "id: x\nversion: 1\nsteps:\n  w:\n    wait:\n      a.b: e\n    timeout: 1m\n    on_timeout: e\n    poll:\n      call: http.request\n      with:\n        service: s\n        path: \"/v1/x#top\"\n      emit:\n        a.b: result.status == 200\n  e:\n    end: approved\n    reason: r\n";
    assert_eq!(
        render(poll),
        "wf.yaml:13:15: `path` is a URL path and may not contain `#`; put query parameters in `query`"
    );
}

#[test]
fn call_retry_problems_have_positions() {
    let head = "id: x\nversion: 1\nsteps:\n  c:\n    call: http.request\n    with:\n      service: s\n      path: /v1/x\n    next: e\n";
    let tail = "  e:\n    end: approved\n    reason: r\n";
    let with = |retry: &str| render(&format!("{head}    retry:\n{retry}{tail}"));
    assert_eq!(
        with(
            "      while: result.body.status == 'pending'\n      every: 1s\n      max_every: 15s\n"
        ),
        "ok"
    );
    assert_eq!(
        with("      every: 1s\n"),
        "wf.yaml:11:12: `retry` needs `while`: the CEL condition over `result` under which the call runs again"
    );
    assert_eq!(
        with("      while: result.body.status ==\n      every: soon\n      until: 3\n"),
        "wf.yaml:11:14: CEL does not compile: `result.body.status ==`: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\nwf.yaml:12:14: `every` must be a duration like `30s`, `10m` or `2h`, got `soon`\nwf.yaml:13:7: unknown key `until` in retry"
    );
    assert_eq!(
        with("      while: event.x == 1\n"),
        "wf.yaml:11:14: `event.x == 1` reads unknown variable `event` (here: input, state, session, result)"
    );
    assert_eq!(
        render(&format!("{head}    retry: pending\n{tail}")),
        "wf.yaml:10:12: `retry` must be a mapping with `while` (a CEL condition over `result`), `every` and `max_every`"
    );
}

/// Found by fuzzing (fuzz/regressions/workflow): thousands of nested
/// sequences (`- - - ...`, `[[[...`) or a long operator chain in an
/// expression overflowed the stack while loading, aborting the process.
/// Each is a diagnostic now, on a stack no larger than a tokio worker's.
#[test]
fn deep_documents_are_refused_not_a_stack_overflow() {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            let block = format!("id: x\nversion: 1\nevents:\n  {}x\n", "- ".repeat(3000));
            assert!(render(&block).contains("nested more than 64 levels deep"));
            let flow = format!("id: x\nversion: 1\nsteps: {}{}\n", "[".repeat(5000), "]".repeat(5000));
            // (The scanner's own limit on flow levels may answer first.)
            let out = render(&flow);
            assert!(
                out.contains("nested more than 64 levels deep") || out.contains("recursion limit"),
                "{out}"
            );
            let unclosed = format!("id: x\nsteps: {}\n", "{a: ".repeat(5000));
            let out = render(&unclosed);
            assert!(
                out.contains("nested more than 64 levels deep") || out.contains("recursion limit"),
                "{out}"
            );
            let expr = format!(
                "id: x\nversion: 1\nsteps:\n  a:\n    decide:\n      - when: input{}\n        then: approved\n",
                ".a".repeat(4000)
            );
            assert!(render(&expr).contains("split it into steps"), "{}", render(&expr));
        })
        .expect("thread")
        .join()
        .expect("no stack overflow");
}

/// Every shipped workflow says what its input must be: a session without
/// a field a step reads is refused at creation, not failed half-way.
#[test]
fn shipped_workflows_declare_their_input() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../workflows");
    for entry in std::fs::read_dir(dir).expect("workflows/ exists") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let src = std::fs::read_to_string(&path).expect("readable");
            let wf = parse(&src, catalog()).expect("valid");
            assert!(wf.input.is_some(), "{} has no `input`", path.display());
        }
    }
}

const FLOW_INPUT: &str = "id: x\nversion: 1\ninput:\n  type: object\n  required: [flow]\n  properties:\n    flow: {type: string}\n    data: {type: object}\n";

#[test]
fn steps_read_only_declared_input_fields() {
    let src = format!(
        "{FLOW_INPUT}steps:\n  d:\n    decide:\n      - when: input.flwo == 'a' && has(input.data.x)\n        next: e\n    default: e\n  e:\n    end: approved\n    reason: \"${{input.reason}} ${{input.flow}}\"\n"
    );
    assert_eq!(
        render(&src),
        "wf.yaml:12:15: `input.flwo == 'a' && has(input.data.x)` reads `input.flwo`, which the `input` schema does not declare (declared: flow, data); did you mean `flow`?\n\
         wf.yaml:17:13: `input.reason` reads `input.reason`, which the `input` schema does not declare (declared: flow, data)"
    );
    // Without an `input` section any field may be read, as before.
    let open =
        "id: x\nversion: 1\nsteps:\n  e:\n    end: approved\n    reason: ${input.anything}\n";
    assert_eq!(render(open), "ok");
}

#[test]
fn a_bad_input_schema_has_a_position() {
    let not_object = "id: x\nversion: 1\ninput:\n  type: array\nsteps:\n  e:\n    end: approved\n    reason: r\n";
    assert_eq!(
        render(not_object),
        "wf.yaml:3:1: `input` must describe an object: a session's input is a JSON object (`type: object`)"
    );
    let invalid = "id: x\nversion: 1\ninput:\n  type: object\n  required: flow\nsteps:\n  e:\n    end: approved\n    reason: r\n";
    let out = render(invalid);
    assert!(
        out.starts_with("wf.yaml:3:1: `input` is not a valid JSON Schema"),
        "{out}"
    );
    let scalar = "id: x\nversion: 1\ninput: yes\nsteps:\n  e:\n    end: approved\n    reason: r\n";
    assert!(render(scalar).starts_with("wf.yaml:3:1: `input` must be a JSON Schema"));
}

/// Quoted YAML scalars stay strings: `"001"` was read as the number 1 (an
/// Ockto consent code sent as `1`) and `"null"` as null.
#[test]
fn quoted_scalars_stay_strings() {
    let src = "id: x\nversion: 1\ninput:\n  type: object\n  properties:\n    code: {const: \"001\"}\n    maybe:\n      type: [string, \"null\"]\n    flag: {const: 'true'}\nsteps:\n  e:\n    end: approved\n    reason: r\n";
    let wf = parse(src, catalog()).unwrap_or_else(|d| panic!("{}", d.render("wf.yaml")));
    let schema = wf.input.expect("declared");
    assert!(
        schema
            .check(&serde_json::json!({"code": "001", "maybe": null, "flag": "true"}))
            .is_ok()
    );
    assert!(schema.check(&serde_json::json!({"code": 1})).is_err());
    assert!(schema.check(&serde_json::json!({"flag": true})).is_err());
}

#[test]
fn retention_is_a_bounded_duration_with_a_position() {
    let src = "id: x\nversion: 1\nretention: 30d\nsteps:\n  e:\n    end: approved\n    reason: r\n";
    let wf = parse(src, catalog()).expect("valid");
    assert_eq!(wf.retention, Some(30 * 24 * 3600 * 1000));
    let without = parse(&src.replace("retention: 30d\n", ""), catalog()).expect("valid");
    assert_eq!(without.retention, None);
    assert_eq!(
        render(&src.replace("30d", "soon")),
        "wf.yaml:3:12: `retention` must be a duration like `30s`, `10m` or `2h`, got `soon`"
    );
    assert_eq!(
        render(&src.replace("30d", "0s")),
        "wf.yaml:3:12: `retention` must be a duration like `30s`, `10m` or `2h`, got `0s`"
    );
    assert_eq!(
        render(&src.replace("30d", "36501d")),
        "wf.yaml:3:12: `retention` must be at most 36500d (100 years)"
    );
}

#[test]
fn review_step_problems_have_positions() {
    let head = "id: x\nversion: 1\nsteps:\n  r:\n";
    let tail = "  yes:\n    end: approved\n    reason: ok\n  no:\n    end: declined\n    reason: no\n  late:\n    end: review\n    reason: late\n";
    let with = |step: &str| render(&format!("{head}{step}{tail}"));
    assert_eq!(
        with(
            "    review:\n      approved: yes\n      declined: no\n    group: kyc\n    facts:\n      score: ${state.score}\n    timeout: 72h\n    on_timeout: late\n"
        ),
        "ok"
    );
    insta::assert_snapshot!(
        "review_step_problems",
        [
            // No `declined`; a decision that does not exist; a step that does not.
            with("    review:\n      approved: yes\n      maybe: no\n    timeout: 1h\n    on_timeout: lat\n"),
            // Bad group, facts not a mapping, no deadline.
            with("    review:\n      approved: yes\n      declined: no\n    group: Compliance Team\n    facts: [score]\n"),
            // Facts read only input, state and session; no timeout.
            with("    review:\n      approved: yes\n      declined: no\n    facts:\n      score: ${result.score}\n    on_timeout: late\n"),
            // `review` must be a mapping; an unknown key.
            with("    review: approved\n    timeout: 1h\n    on_timeout: late\n    assignee: ops\n"),
        ]
        .join("\n---\n")
    );
}
