//! Structured inputs from flat bytes: a flags byte, then parts separated
//! by 0xFF (a byte valid UTF-8 never holds, so text parts stay text).

pub const SEP: u8 = 0xFF;

pub struct Parts<'a> {
    pub flags: u8,
    parts: Vec<&'a [u8]>,
}

impl<'a> Parts<'a> {
    pub fn new(data: &'a [u8]) -> Parts<'a> {
        let (flags, rest) = match data.split_first() {
            Some((f, rest)) => (*f, rest),
            None => (0, data),
        };
        Parts {
            flags,
            parts: rest.split(|b| *b == SEP).collect(),
        }
    }

    /// Part `i`, empty if absent.
    pub fn bytes(&self, i: usize) -> &'a [u8] {
        self.parts.get(i).copied().unwrap_or_default()
    }

    /// Part `i` as text (lossy), as a server reading it as UTF-8 would.
    pub fn text(&self, i: usize) -> String {
        String::from_utf8_lossy(self.bytes(i)).into_owned()
    }

    pub fn flag(&self, bit: u8) -> bool {
        self.flags & (1 << bit) != 0
    }

    /// Part `i` read as an i64 if it is one, else derived from its bytes.
    pub fn number(&self, i: usize) -> i64 {
        let t = self.text(i);
        t.trim().parse().unwrap_or_else(|_| {
            self.bytes(i)
                .iter()
                .take(8)
                .fold(0i64, |acc, b| (acc << 8) | i64::from(*b))
        })
    }
}

/// Joins parts into one input (for seeds and regression inputs).
pub fn join(flags: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![flags];
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        out.extend_from_slice(p);
    }
    out
}
