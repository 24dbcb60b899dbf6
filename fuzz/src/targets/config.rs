//! Config loading from a TOML string, with a few `GANGWAY_*` variables:
//! parse, merge over the defaults, `${env:}` expansion, typed, checked.

use crate::Target;
use crate::split::Parts;
use gangway_server::config::Config;

pub const TARGET: Target = Target {
    name: "config",
    about: "config TOML (+ GANGWAY_* env): Config::load_str",
    run,
    dict: &[
        "[server]\n",
        "[store]\n",
        "[http.services.s]\n",
        "[http.webhooks.w]\n",
        "[incode]\n",
        "[ockto]\n",
        "[dialog360]\n",
        "[oih]\n",
        "[rate_limits]\n",
        "[limits]\n",
        "[client]\n",
        "[webhooks]\n",
        "[[",
        "]]\n",
        " = ",
        "\"\"\"",
        "'''",
        "${env:X}",
        "$${",
        "listen",
        "base_url",
        "encryption_key",
        "\"30s\"",
        "\"1h\"",
        "1979-05-27T07:32:00Z",
        "inf",
        "nan",
        "0x7fffffffffffffff",
        "GANGWAY_",
        "__",
    ],
};

pub fn run(data: &[u8]) {
    let parts = Parts::new(data);
    let text = parts.text(0);
    // `${file:...}` reads files: not fuzzed (a path like /dev/zero never ends).
    if text.contains("file:") {
        return;
    }
    let mut env = vec![("X".to_string(), parts.text(2))];
    let var = parts.text(1);
    if let Some((k, v)) = var.split_once('=')
        && k.starts_with("GANGWAY_")
        && !v.contains("file:")
    {
        env.push((k.to_string(), v.to_string()));
    }
    if let Ok(config) = Config::load_str("fuzz.toml", &text, &env) {
        let _ = config.base_url();
        let _ = config.webhooks.address_policy();
    }
}
