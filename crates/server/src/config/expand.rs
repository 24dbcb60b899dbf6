//! `${env:NAME}` and `${file:/path}` references inside config strings:
//! anywhere in a string, as many as it holds (`"Bearer ${env:SCORE_KEY}"`,
//! `"postgres://gangway:${file:/run/secrets/pg}@db/gangway"`). `$${` is a
//! literal `${`; any other `$` is kept as written. Anything else that starts
//! with `${` is refused rather than sent somewhere as a secret's text.

/// Expands every reference in `text`. The text a reference brings in is
/// never scanned again, so a secret may contain `${`. Errors say what is
/// wrong without quoting the surrounding value, which may be a secret.
pub(super) fn expand(text: &str, env: &[(String, String)]) -> Result<String, String> {
    if !text.contains("${") {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        if at > 0 && rest[..at].ends_with('$') {
            // `$${`: the escape for a literal `${`.
            out.push_str(&rest[..at - 1]);
            out.push_str("${");
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let body = &rest[at + 2..];
        let Some(end) = body.find('}') else {
            return Err(format!(
                "unclosed `${{` at character {}: write `${{env:NAME}}` or `${{file:/path}}`, or `$${{` for a literal `${{`",
                text.len() - rest.len() + at + 1
            ));
        };
        out.push_str(&resolve(&body[..end], env)?);
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn resolve(reference: &str, env: &[(String, String)]) -> Result<String, String> {
    match reference.split_once(':') {
        Some(("env", name)) => {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`${{env:{}}}` does not name an environment variable (letters, digits and `_`)",
                    shown(name)
                ));
            }
            match env.iter().find(|(k, _)| k == name) {
                None => Err(format!("environment variable `{name}` is not set")),
                // An empty secret is a mistake (an unset variable in a
                // compose file, a wrong name in a unit), never a value.
                Some((_, v)) if v.is_empty() => Err(format!(
                    "environment variable `{name}` (in `${{env:{name}}}`) is set but empty"
                )),
                Some((_, v)) => Ok(v.clone()),
            }
        }
        Some(("file", path)) => {
            if path.is_empty() {
                return Err("`${file:}` names no file; write `${file:/path}`".into());
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read `{path}` (in `${{file:{path}}}`): {e}"))?;
            // Files written by editors and `echo` end with a newline that
            // is no part of the secret.
            let text = text.trim_end();
            if text.is_empty() {
                return Err(format!("file `{path}` (in `${{file:{path}}}`) is empty"));
            }
            Ok(text.to_string())
        }
        _ => Err(format!(
            "unknown reference `{}`: write `${{env:NAME}}` or `${{file:/path}}` (lowercase), or `$${{` for a literal `${{`",
            form(reference)
        )),
    }
}

/// How an unknown reference is named in the error: its kind when it looks
/// like one (`${ENV:…}`, `${foo}`), else nothing of its text.
fn form(reference: &str) -> String {
    let word = |s: &str| {
        !s.is_empty() && s.len() <= 24 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    match reference.split_once(':') {
        Some((kind, _)) if word(kind) => format!("${{{kind}:…}}"),
        None if word(reference) => format!("${{{reference}}}"),
        _ => "${…}".into(),
    }
}

fn shown(name: &str) -> String {
    if name.len() <= 40 {
        name.to_string()
    } else {
        "…".into()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env() -> Vec<(String, String)> {
        vec![
            ("A".into(), "alpha".into()),
            ("B".into(), "b${env:A}".into()),
            ("EMPTY".into(), String::new()),
        ]
    }

    #[test]
    fn references_anywhere_and_several() {
        let e = env();
        assert_eq!(expand("Bearer ${env:A}", &e).unwrap(), "Bearer alpha");
        assert_eq!(
            expand("/tmp/${env:A}/x/${env:A}", &e).unwrap(),
            "/tmp/alpha/x/alpha"
        );
        // What a reference brings in is not expanded again.
        assert_eq!(expand("${env:B}", &e).unwrap(), "b${env:A}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret\n").unwrap();
        let url = format!("postgres://u:${{file:{}}}@db/g", f.display());
        assert_eq!(expand(&url, &e).unwrap(), "postgres://u:s3cret@db/g");
    }

    #[test]
    fn dollars_and_the_escape() {
        let e = env();
        assert_eq!(expand("pa$$word$", &e).unwrap(), "pa$$word$");
        assert_eq!(expand("$${env:A}", &e).unwrap(), "${env:A}");
        assert_eq!(expand("a $${x} ${env:A}", &e).unwrap(), "a ${x} alpha");
        assert_eq!(expand("$a{b}", &e).unwrap(), "$a{b}");
    }

    #[test]
    fn unknown_forms_are_refused() {
        let e = env();
        for (text, says) in [
            ("${ENV:A}", "unknown reference `${ENV:…}`"),
            ("x ${foo} y", "unknown reference `${foo}`"),
            ("${env:A", "unclosed `${` at character 1"),
            ("ab${", "unclosed `${` at character 3"),
            ("${env:}", "does not name an environment variable"),
            ("${env:NOPE}", "`NOPE` is not set"),
            (
                "${env:EMPTY}",
                "`EMPTY` (in `${env:EMPTY}`) is set but empty",
            ),
            ("${file:}", "names no file"),
            ("${file:/nonexistent/x}", "cannot read `/nonexistent/x`"),
        ] {
            let err = expand(text, &e).expect_err(text);
            assert!(err.contains(says), "{text}: {err}");
        }
        // An unknown form's text is not repeated: it may be part of a secret.
        let err = expand("p4ss${w0rd with space}", &e).unwrap_err();
        assert!(!err.contains("w0rd"), "{err}");
    }
}
