//! A small mutator in the style of libFuzzer's (without coverage feedback):
//! stacked byte, token and splice mutations of corpus entries, with a bias
//! towards what breaks parsers (deep nesting, huge numbers, odd bytes).

/// xorshift64*: fast, seedable, good enough to pick mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (0 if `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Bytes and tokens every format trips over.
const COMMON: &[&str] = &[
    "\0",
    "\u{FEFF}",
    "\u{10FFFF}",
    "é",
    "\r\n",
    "\\u0000",
    "\\ud800",
    "0",
    "-1",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "1e308",
    "-1e-400",
    "NaN",
    "null",
    "true",
    "\"",
    "'",
    "{",
    "}",
    "[",
    "]",
    "${",
    "$${",
    "%",
    "%00",
    "%2e%2e",
    "../",
    "/",
    "?",
    "#",
    "=",
    "&",
    ",",
    ":",
    " ",
];

const INTERESTING_BYTES: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xc0, 0xff, b'\n', b'\t', b'"', b'\\', b'{', b'}', b'[', b']', b'$', b':',
];

const INTERESTING_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "255",
    "65536",
    "2147483648",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "1e999",
    "0.000000000000000000001",
    "1.5",
];

pub struct Mutator<'a> {
    pub rng: Rng,
    pub dict: &'a [&'a str],
    pub max_len: usize,
}

impl Mutator<'_> {
    /// A new input from `base`, sometimes spliced with `other`.
    pub fn mutate(&mut self, base: &[u8], other: &[u8]) -> Vec<u8> {
        let mut data = base.to_vec();
        let n = 1 + self.rng.below(4) + if self.rng.chance(8) { 8 } else { 0 };
        for _ in 0..n {
            self.once(&mut data, other);
        }
        data.truncate(self.max_len);
        data
    }

    fn token(&mut self) -> &[u8] {
        if !self.dict.is_empty() && self.rng.chance(2) {
            self.dict[self.rng.below(self.dict.len())].as_bytes()
        } else {
            COMMON[self.rng.below(COMMON.len())].as_bytes()
        }
    }

    fn once(&mut self, data: &mut Vec<u8>, other: &[u8]) {
        let len = data.len();
        let at = self.rng.below(len + 1);
        match self.rng.below(12) {
            0 if len > 0 => {
                let i = self.rng.below(len);
                data[i] ^= 1 << self.rng.below(8);
            }
            1 if len > 0 => {
                let i = self.rng.below(len);
                data[i] = INTERESTING_BYTES[self.rng.below(INTERESTING_BYTES.len())];
            }
            2 => {
                let k = 1 + self.rng.below(8);
                let bytes: Vec<u8> = (0..k).map(|_| self.rng.next_u64() as u8).collect();
                data.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let k = 1 + self.rng.below((len - at).clamp(1, 64));
                let end = (at + k).min(len);
                data.drain(at..end);
            }
            4 | 5 => {
                let t = self.token().to_vec();
                data.splice(at..at, t);
            }
            6 if len > 0 => {
                // Copy a chunk elsewhere.
                let from = self.rng.below(len);
                let k = 1 + self.rng.below((len - from).min(128));
                let chunk = data[from..from + k].to_vec();
                let to = self.rng.below(len + 1);
                data.splice(to..to, chunk);
            }
            7 if !other.is_empty() => {
                // Splice: our prefix, the other's suffix.
                let cut = self.rng.below(other.len());
                data.truncate(at);
                data.extend_from_slice(&other[cut..]);
            }
            8 => self.replace_number(data),
            9 if len > 0 => {
                // Repeat a short chunk many times: deep nesting, long runs.
                let from = self.rng.below(len);
                let k = 1 + self.rng.below((len - from).min(8));
                let chunk = data[from..from + k].to_vec();
                let times = [16, 256, 4096][self.rng.below(3)];
                let mut run = Vec::with_capacity(chunk.len() * times);
                for _ in 0..times {
                    run.extend_from_slice(&chunk);
                }
                data.splice(from..from, run);
            }
            10 if len > 0 => {
                data.truncate(self.rng.below(len));
            }
            11 if len > 1 => {
                // Swap two bytes.
                let (i, j) = (self.rng.below(len), self.rng.below(len));
                data.swap(i, j);
            }
            _ => {
                let t = self.token().to_vec();
                data.splice(at..at, t);
            }
        }
    }

    /// Replaces a run of ASCII digits with an interesting number.
    fn replace_number(&mut self, data: &mut Vec<u8>) {
        let digits: Vec<usize> = data
            .iter()
            .enumerate()
            .filter(|(_, b)| b.is_ascii_digit())
            .map(|(i, _)| i)
            .collect();
        let number = INTERESTING_NUMBERS[self.rng.below(INTERESTING_NUMBERS.len())].as_bytes();
        if digits.is_empty() {
            let at = self.rng.below(data.len() + 1);
            data.splice(at..at, number.iter().copied());
            return;
        }
        let start = digits[self.rng.below(digits.len())];
        let end = data[start..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .map_or(data.len(), |p| start + p);
        data.splice(start..end, number.iter().copied());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_stay_within_the_length_cap() {
        let mut m = Mutator {
            rng: Rng::new(7),
            dict: &["when:"],
            max_len: 512,
        };
        let mut data = b"kind: workflow\nsteps: []\n".to_vec();
        for _ in 0..2000 {
            data = m.mutate(&data, b"{\"a\": [1, 2]}");
            assert!(data.len() <= 512);
            if data.is_empty() {
                data = b"x".to_vec();
            }
        }
    }
}
