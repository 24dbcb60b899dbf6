//! "Did you mean" for a misspelt key, kind or name: the closest candidate
//! within two edits.

/// ", did you mean `x`?" for a close match (edit distance <= 2).
pub(super) fn suggest(word: &str, candidates: &[&str]) -> String {
    candidates
        .iter()
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, _)| *d <= 2 && *d < word.len().max(1))
        .min()
        .map(|(_, c)| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
