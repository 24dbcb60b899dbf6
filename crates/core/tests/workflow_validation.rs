//! Validator messages, snapshot-tested: they are the user interface of
//! `gangway validate`.

use gangway_core::workflow::parse;

fn render(src: &str) -> String {
    match parse(src) {
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
