//! Refuses expressions deep enough to exhaust the stack, before the CEL
//! parser sees them. The parser and evaluator recurse once per operator of
//! a chain (`a.b.c...`, `1 + 1 + ...`): a few thousand overflow a 2 MiB
//! tokio worker stack and abort the whole server (found by fuzzing). Rules
//! in workflows use a few dozen.
//!
//! The count must never be lower than what the parser will see. An
//! expression is first split into tokens the way the cel crate's lexer
//! (its ANTLR grammar, `CEL.g4`) splits it, so that long string literals
//! cost nothing. If that lexer would report an error anywhere (an
//! unterminated string, a newline in a one-line string, a bad escape, a
//! stray character), its recovery drops what it scanned and lexes on from
//! a point that is hard to follow exactly, so every operator character of
//! the whole text is counted instead, quotes or not: the expression cannot
//! compile anyway, and counting too much only refuses it sooner. (The
//! fuzzer found `timestamp('...\r\n6-01-016-01-...`: a chain hidden behind
//! an unterminated string from a count that toggled on quotes.)

/// Operators (and brackets, dots, commas) one expression may hold.
pub const MAX_OPERATORS: usize = 256;
/// Conditionals (`?`) one expression may chain: each nests the parse.
pub const MAX_CONDITIONALS: usize = 32;
/// Words and operators one expression may hold (a bound on what the
/// parser's error recovery walks through).
pub const MAX_TOKENS: usize = 1024;

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    operators: usize,
    conditionals: usize,
    tokens: usize,
}

pub(super) fn check_complexity(source: &str) -> Result<(), String> {
    let s = source.as_bytes();
    let Counts {
        operators,
        conditionals,
        tokens,
    } = lex(s).unwrap_or_else(|| count_everything(s));
    if conditionals > MAX_CONDITIONALS {
        return Err(format!(
            "the expression chains {conditionals} conditionals (`?`), at most {MAX_CONDITIONALS}; split it into steps"
        ));
    }
    if operators > MAX_OPERATORS {
        return Err(format!(
            "the expression is too long: {operators} operators, at most {MAX_OPERATORS}; split it into steps"
        ));
    }
    if tokens > MAX_TOKENS {
        return Err(format!(
            "the expression is too long: {tokens} words and operators, at most {MAX_TOKENS}; split it into steps"
        ));
    }
    Ok(())
}

fn is_operator(c: u8) -> bool {
    matches!(
        c,
        b'.' | b'+'
            | b'-'
            | b'*'
            | b'/'
            | b'%'
            | b'<'
            | b'>'
            | b'='
            | b'!'
            | b'&'
            | b'|'
            | b'('
            | b'['
            | b'{'
            | b','
            | b':'
            | b'?'
    )
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Every operator character and word of the text, inside quotes or not.
fn count_everything(s: &[u8]) -> Counts {
    let mut c = Counts::default();
    let mut i = 0;
    while i < s.len() {
        if is_word(s[i]) {
            let start = i;
            while i < s.len() && is_word(s[i]) {
                i += 1;
            }
            c.tokens += 1;
            c.operators += usize::from(&s[start..i] == b"in");
            continue;
        }
        c.operators += usize::from(is_operator(s[i]));
        c.conditionals += usize::from(s[i] == b'?');
        i += 1;
    }
    c.tokens += c.operators;
    c
}

/// The counts over the lexer's tokens, or `None` where the lexer would
/// report an error.
fn lex(s: &[u8]) -> Option<Counts> {
    let mut c = Counts::default();
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        // Literals first: `b'..'`, `r".."`, `br'''..'''` win over the
        // identifiers their prefixes are (the lexer takes the longest).
        if let Some(end) = prefixed_literal(s, i) {
            c.tokens += 1;
            i = end;
            continue;
        }
        match b {
            b' ' | b'\t' | b'\r' | b'\n' | 0x0C => i += 1,
            b'/' if s.get(i + 1) == Some(&b'/') => {
                i += s[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .unwrap_or(s.len() - i);
            }
            b'\'' | b'"' => return None, // not a complete literal: an error
            b'`' => {
                let len = s[i + 1..].iter().position(|&b| b == b'`')?;
                let name = &s[i + 1..i + 1 + len];
                let ok = |b: &u8| is_word(*b) || matches!(b, b'.' | b'-' | b'/' | b' ');
                if name.is_empty() || !name.iter().all(ok) {
                    return None;
                }
                c.tokens += 1;
                i += len + 2;
            }
            b'0'..=b'9' => {
                i = number(s, i);
                c.tokens += 1;
            }
            b'.' if s.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i = number(s, i);
                c.tokens += 1;
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let start = i;
                while i < s.len() && is_word(s[i]) {
                    i += 1;
                }
                c.tokens += 1;
                c.operators += usize::from(&s[start..i] == b"in");
            }
            b'<' | b'>' | b'!' if s.get(i + 1) == Some(&b'=') => {
                c.operators += 1;
                i += 2;
            }
            b'=' | b'&' | b'|' => {
                // Only `==`, `&&`, `||` are tokens; a single one is an error.
                if s.get(i + 1) != Some(&b) {
                    return None;
                }
                c.operators += 1;
                i += 2;
            }
            b if is_operator(b) || matches!(b, b')' | b']' | b'}') => {
                c.operators += usize::from(is_operator(b));
                c.conditionals += usize::from(b == b'?');
                i += 1;
            }
            _ => return None, // `\`, `#`, `;`, non-ASCII...: an error
        }
    }
    c.tokens += c.operators;
    Some(c)
}

/// The end of the number at `i` (NUM_FLOAT, NUM_INT, NUM_UINT), longest
/// match as the lexer takes it.
fn number(s: &[u8], i: usize) -> usize {
    let digits = |mut k: usize| {
        while s.get(k).is_some_and(u8::is_ascii_digit) {
            k += 1;
        }
        k
    };
    let exponent = |k: usize| {
        if !matches!(s.get(k), Some(b'e' | b'E')) {
            return k;
        }
        let sign = k + 1 + usize::from(matches!(s.get(k + 1), Some(b'+' | b'-')));
        let end = digits(sign);
        if end > sign { end } else { k }
    };
    let uint = |k: usize| k + usize::from(matches!(s.get(k), Some(b'u' | b'U')));
    if s[i] == b'.' {
        return exponent(digits(i + 1));
    }
    if s[i] == b'0' && s.get(i + 1) == Some(&b'x') {
        let mut k = i + 2;
        while s.get(k).is_some_and(u8::is_ascii_hexdigit) {
            k += 1;
        }
        if k > i + 2 {
            return uint(k);
        }
    }
    let int = digits(i);
    if s.get(int) == Some(&b'.') && s.get(int + 1).is_some_and(u8::is_ascii_digit) {
        return exponent(digits(int + 1));
    }
    let e = exponent(int);
    if e > int { e } else { uint(int) }
}

/// The end of the complete string or bytes literal at `i`, with its `b`
/// and `r` prefixes (`STRING`, `BYTES`), or `None`.
fn prefixed_literal(s: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    if matches!(s.get(j), Some(b'b' | b'B')) {
        j += 1;
    }
    let raw = matches!(s.get(j), Some(b'r' | b'R'));
    j += usize::from(raw);
    let quote = *s.get(j)?;
    if quote != b'\'' && quote != b'"' {
        return None;
    }
    // The longest complete alternative: a triple-quoted literal over the
    // empty one-line literal its first two quotes make.
    if s.get(j..j + 3) == Some(&[quote; 3])
        && let Some(end) = body(s, j + 3, quote, raw, true)
    {
        return Some(end);
    }
    body(s, j + 1, quote, raw, false)
}

/// The end of a literal's body from `k`, closed by `quote` (three of them
/// when `triple`), or `None` if it is never closed or malformed.
fn body(s: &[u8], mut k: usize, quote: u8, raw: bool, triple: bool) -> Option<usize> {
    while k < s.len() {
        let c = s[k];
        if c == quote && (!triple || s.get(k..k + 3) == Some(&[quote; 3])) {
            return Some(k + if triple { 3 } else { 1 });
        }
        if !triple && (c == b'\n' || c == b'\r') {
            return None;
        }
        if c == b'\\' && !raw {
            k += escape_len(&s[k..])?;
            continue;
        }
        k += 1;
    }
    None
}

/// Length of the escape sequence at the start of `s` (a backslash first),
/// or `None` for one the grammar's `ESC_SEQ` does not know.
fn escape_len(s: &[u8]) -> Option<usize> {
    let hex = |n: usize| {
        s.get(2..2 + n)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    };
    let octal = |k: usize| s.get(k).is_some_and(|c| (b'0'..=b'7').contains(c));
    match *s.get(1)? {
        b'a' | b'b' | b'f' | b'n' | b'r' | b't' | b'v' | b'"' | b'\'' | b'\\' | b'?' | b'`' => {
            Some(2)
        }
        b'0'..=b'3' if octal(2) && octal(3) => Some(4),
        b'x' | b'X' if hex(2) => Some(4),
        b'u' if hex(4) => Some(6),
        b'U' if hex(8) => Some(10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{check_complexity, lex};

    fn chain(n: usize) -> String {
        vec!["1"; n].join("-")
    }

    #[test]
    fn complete_literals_cost_nothing() {
        for lit in [
            format!("'{}'", "a+b.".repeat(2000)),
            format!("\"{}\"", "a+b.\\n\\x41\\u0041\\101".repeat(300)),
            format!("r'{}'", "a+b.\\".repeat(1000)),
            format!("b'''{}\n{}'''", "a-b'".repeat(500), "c.d".repeat(500)),
            format!("R\"\"\"{}\"\"\"", "x-y\\q\n".repeat(500)),
        ] {
            let e = format!("{lit} == input.s");
            assert!(lex(e.as_bytes()).is_some(), "{lit:.40}");
            assert!(check_complexity(&e).is_ok(), "{lit:.40}");
        }
    }

    /// Whatever ends a literal early or makes it no literal at all, the
    /// chain behind it is counted: each of these hid a chain from the old
    /// count, which toggled on quotes.
    #[test]
    fn chains_behind_malformed_literals_are_counted() {
        let c = chain(2000);
        for hidden in [
            format!("timestamp('x\r\n{c}"),
            format!("'unterminated {c}"),
            format!("'bad escape \\q' + {c} + '"),
            format!("r'\\' + {c} + '"),
            format!("'''never closed {c}"),
            format!("\"x\n{c}\""),
            format!("`a//b` + {c}"),
            format!("// it's\n{c} + '"),
            format!("b'\\x4' + {c} + '"),
            format!("1r'\\' + {c} + '\\''"),
            format!("1e5r'\\' + {c} + '\\''"),
            format!("\u{e9}r'\\' + {c} + '\\''"),
        ] {
            let e = check_complexity(&hidden).expect_err(&hidden[..20]);
            assert!(e.contains("too long"), "{e}");
        }
    }

    #[test]
    fn ordinary_rules_lex_as_cel_does() {
        for rule in [
            "result.score >= 70 && input.country in ['NL', 'BE']",
            "size(result.checks.filter(c, c.status == 'FAIL')) == 0 ? 'ok' : 'review'",
            "`weird.key-name` == 1 // a comment with ''' quotes",
            "0x1Fu + 1.5e-3 + .5 + 3u + b'\\x41' + r'\\d+' + '''a\nb'''",
            "!(a || b) && c != d % 2",
        ] {
            assert!(lex(rule.as_bytes()).is_some(), "{rule}");
            assert!(check_complexity(rule).is_ok(), "{rule}");
        }
    }

    #[test]
    fn deep_chains_are_refused() {
        assert!(check_complexity(&chain(200)).is_ok());
        assert!(check_complexity(&chain(300)).is_err());
        let ternary = vec!["c ? 1"; 40].join(" : ") + " : 0";
        let refused = check_complexity(&ternary).expect_err("40 conditionals");
        assert!(refused.contains("conditionals"), "{refused}");
    }
}
