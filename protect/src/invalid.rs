//! A `[protect]` value refused at load: its key path and the message apart, so that a name the
//! operator chose (a route called `api.v1`) stays one key of the path.

use std::fmt;

/// The key path below `[protect]` (`["rate_limit", "routes", "api.v1", "burst"]`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub path: Vec<String>,
    pub message: String,
}

impl Invalid {
    /// The error of a check under `prefix`, whose message starts with `prefix` dotted and the
    /// field checked (`rate_limit.routes.api.v1.burst = 0 …`): `prefix` is kept whole, the
    /// field below it (fixed names only) is added when the message names one.
    pub fn under(prefix: &[&str], message: String) -> Self {
        let dotted = prefix.join(".");
        let field = message
            .strip_prefix(dotted.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|rest| rest.split([' ', ':']).next())
            .unwrap_or_default();
        let path = prefix
            .iter()
            .copied()
            .chain(field.split('.').filter(|f| !f.is_empty()))
            .map(str::to_string)
            .collect();
        Invalid { path, message }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
