//! Corpus items: whole requests, bare values in three placements, CRS tests.

use super::owned::OwnedRequest;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// What an item is expected to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Label {
    Benign,
    Attack(String),
    /// CRS `no_expect_ids`: a named rule must not fire (weak negative).
    CrsNegative,
}

#[derive(Debug, Clone)]
pub struct Item {
    /// Corpus name (file stem or "crs").
    pub corpus: String,
    /// Site for request corpora, placement for values, family for CRS.
    pub group: String,
    pub label: Label,
    /// False for items that are not an attack on their own (lone `'`...).
    pub standalone: bool,
    pub request: OwnedRequest,
    /// The bare value of a value-corpus item (`None` for whole requests).
    pub value: Option<String>,
    /// Where the item comes from inside its corpus: the record's `source` (a payload file of
    /// PayloadsAllTheThings, a site), or the CRS rule test file.
    pub source: String,
    /// What to show for a miss or false positive.
    pub show: String,
}

const BROWSER_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.0.0 Safari/537.36";

fn base_headers() -> Vec<(String, Vec<u8>)> {
    vec![
        ("Host".into(), b"shop.example".to_vec()),
        ("User-Agent".into(), BROWSER_UA.as_bytes().to_vec()),
        (
            "Accept".into(),
            b"text/html,application/xhtml+xml,*/*;q=0.8".to_vec(),
        ),
    ]
}

/// The three placements of a bare value.
pub fn placements(value: &str) -> [(&'static str, OwnedRequest); 3] {
    let enc = percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    let mut q = OwnedRequest {
        method: "GET".into(),
        path: "/search".into(),
        query: format!("q={enc}"),
        version: "HTTP/1.1".into(),
        headers: base_headers(),
        body: vec![],
    };
    q.headers.truncate(3);
    let mut form = OwnedRequest {
        method: "POST".into(),
        path: "/search".into(),
        query: String::new(),
        version: "HTTP/1.1".into(),
        headers: base_headers(),
        body: format!("q={enc}").into_bytes(),
    };
    form.headers.push((
        "Content-Type".into(),
        b"application/x-www-form-urlencoded".to_vec(),
    ));
    let mut json = OwnedRequest {
        method: "POST".into(),
        path: "/search".into(),
        query: String::new(),
        version: "HTTP/1.1".into(),
        headers: base_headers(),
        body: serde_json::json!({ "q": value }).to_string().into_bytes(),
    };
    json.headers
        .push(("Content-Type".into(), b"application/json".to_vec()));
    [("query", q), ("form", form), ("json", json)]
}

/// Whether a corpus item is an attack on its own (documented in
/// docs/waf-measurement.md):
/// - it has at least three letters or digits after decoding: a lone `'`,
///   `|`, `;`, `%21` or `//` is a probe fragment, not an attack;
/// - a traversal / LFI item has a path separator (some lists carry
///   copies with every `/` stripped: `....etcpasswd` reaches no file), and
///   a traversal item climbs with a (possibly encoded) dot-dot; an item with
///   an unfilled `{file}` template placeholder must climb with a dot-dot
///   segment (`../`), not just hold dots;
/// - an XXE item declares a DTD, an entity, XInclude or XSLT (plain XML
///   or an entity reference alone exploits nothing);
/// - a command-injection item is more than one bare (maybe quoted) word.
pub fn standalone(value: &str, attack_type: &str) -> bool {
    let mut decoded = value.to_string();
    for _ in 0..3 {
        let next = percent_encoding::percent_decode_str(&decoded)
            .decode_utf8_lossy()
            .into_owned();
        if next == decoded {
            break;
        }
        decoded = next;
    }
    let lower = decoded.to_ascii_lowercase();
    // Payload files carry their own comment lines.
    if lower.starts_with("# ") {
        return false;
    }
    // A short probe fragment (`'`, `|`, `;id`, `%21`): fewer than three letters
    // or digits and at most 8 bytes. Longer payloads without letters (JSFuck,
    // `' or ''='`) are attacks on their own and stay counted.
    if decoded
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .count()
        < 3
        && decoded.trim().len() <= 8
    {
        return false;
    }
    match attack_type {
        "path-traversal" | "lfi" => {
            let separator = lower.contains(['/', '\\'])
                || ["0x2f", "0x5c", "%c0", "%c1", "%u22"]
                    .iter()
                    .any(|k| lower.contains(k));
            // Traversal climbs with a (possibly encoded) dot-dot; fuzzer
            // skeletons like `//{file}` or `/AAAA...` reach nothing.
            let raw = value.to_ascii_lowercase();
            let climbs = [
                "..", "%2e", "0x2e", "%c0", "%c1", "%u", "%e0", "%f0", "%f8", "?.", ".?",
                "\u{fffd}",
            ]
            .iter()
            .any(|k| lower.contains(k) || raw.contains(k));
            // A fuzzer template whose `{file}` placeholder was never filled
            // (`/......{file}`, `/0x2e0x2e{file}`) is an attack only where it
            // really climbs: a dot-dot segment followed by a separator.
            let template = lower.contains("{file}");
            let segment = ["../", "..\\", "..%2f", "..%5c", "..0x2f", "..0x5c"]
                .iter()
                .any(|k| lower.contains(k));
            separator && (!template || segment) && (attack_type == "lfi" || climbs)
        }
        "xxe" => [
            "<!entity",
            "<!doctype",
            "xinclude",
            "xi:include",
            "xsl:",
            " system ",
            "xmlns:",
        ]
        .iter()
        .any(|k| lower.contains(k)),
        // A line of a multi-line payload (a closing tag, a comment, plain
        // markup) runs nothing on its own.
        "xss" => [
            "script",
            "javascript",
            "vbscript",
            "data:",
            "expression",
            "url(",
            "import",
            "href",
            "src",
            "action",
            "(",
            "`",
            "on",
        ]
        .iter()
        .any(|k| lower.contains(k)),
        // One word, perhaps quoted or in backticks (`'uname'`, `` `true` ``,
        // `asdf3334`), with no separator, argument or redirection: what it
        // runs, if anything, takes no input and reaches nothing.
        "cmdi" => !lower
            .trim_matches(|c: char| c.is_ascii_whitespace() || "'\"`".contains(c))
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-'),
        // A plain absolute, protocol-relative or site-relative URL is what
        // every `next=` / `continue=` parameter carries (legit-dev: 4 x
        // `continue=https://home.atlassian.com?`): only a URL written to
        // confuse a parser is an attack on its own. A path with a query
        // string (`/?url=...&next=...`) is judged by its parameter values.
        "open-redirect" => {
            let urls: Vec<&str> = match lower.split_once('?') {
                Some((path, query)) if path.starts_with('/') && query.contains('=') => query
                    .split('&')
                    .map(|p| p.split_once('=').map_or(p, |(_, v)| v))
                    .collect(),
                _ => vec![lower.as_str()],
            };
            !urls.iter().all(|u| plain_url(u))
        }
        // A word with a wildcard (`admin*`) is ordinary search syntax: no
        // parenthesis, operator or attribute that could change a filter.
        "ldap-injection" => {
            !(lower.contains('*')
                && lower.starts_with(|c: char| c.is_ascii_alphanumeric())
                && lower
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'*' | b'_' | b'.' | b'-')))
        }
        _ => true,
    }
}

/// `https://host.example/path`, `//host.example`, `/path`: letters, digits, `.`, `-` in the
/// host (an optional port), and `.`, `_`, `~`, `:`, `-`, `/` in the path, no `..` segment.
fn plain_url(u: &str) -> bool {
    let u = u.trim();
    let rest = u.strip_prefix("https:").or_else(|| u.strip_prefix("http:"));
    let path = match rest.unwrap_or(u).strip_prefix("//") {
        Some(after) => {
            let (authority, path) = after.split_at(after.find('/').unwrap_or(after.len()));
            let (host, port) = authority.split_once(':').unwrap_or((authority, "0"));
            if host.is_empty()
                || !host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                || port.is_empty()
                || !port.bytes().all(|b| b.is_ascii_digit())
            {
                return false;
            }
            path
        }
        None if rest.is_none() && u.starts_with('/') => u,
        None => return false,
    };
    path.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b':' | b'-' | b'/'))
        && !path.split('/').any(|seg| seg == "..")
}

/// One round of `%XX` and `+` decoding, lossy (a bad escape stays as it is): for the CRS
/// word test and the held-out payload keys.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn hash(s: &[u8]) -> u64 {
    // FNV-1a: stable across runs and platforms, good enough for splits.
    s.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// A payload file of html5sec's vectors (PayloadsAllTheThings'
/// `MarioXSSVectors.txt`) writes each vector as `<div id="N">…`, usually
/// up to the terminator `//["'`-->]]>]</div>`, over one or several lines;
/// the corpus has one record per line (and lost some terminators). A
/// client sends a vector whole, so the lines of a vector are joined into
/// one item (`Vectors`).
const VECTOR_HEAD: &str = "<div id=\"";
const VECTOR_END: &str = "-->]]>]</div>";
/// The payload files written in that format (other files carry one-line
/// payloads that may start with `<div id="`).
const VECTOR_FILES: &[&str] = &["MarioXSSVectors.txt"];

/// Joins the lines of html5sec vectors (see `VECTOR_HEAD`): from a line
/// opening a vector to the line holding its terminator, or to the line
/// before the next vector's head or a record of another source or label.
/// Lines outside a vector are given back as they are. (The committed
/// sample keeps or drops a vector whole: scripts/waf-corpus-sample.py.)
#[derive(Default)]
struct Vectors {
    source: String,
    label: Option<Label>,
    lines: Vec<String>,
}

impl Vectors {
    /// Takes one value record; gives back the values to emit now.
    fn push(&mut self, value: &str, label: &Label, source: &str) -> Vec<(String, Label, String)> {
        let vector_file = VECTOR_FILES
            .iter()
            .any(|f| source.rsplit('/').next() == Some(f));
        let head = vector_file && value.starts_with(VECTOR_HEAD);
        let continues = !self.lines.is_empty()
            && self.source == source
            && self.label.as_ref() == Some(label)
            && !head;
        let mut out = Vec::new();
        if !continues {
            out.extend(self.flush());
        }
        if continues || head {
            if self.lines.is_empty() {
                self.source = source.to_string();
                self.label = Some(label.clone());
            }
            self.lines.push(value.to_string());
            if value.contains(VECTOR_END) {
                out.extend(self.flush());
            }
        } else {
            out.push((value.to_string(), label.clone(), source.to_string()));
        }
        out
    }

    /// The vector read so far, joined as a client sends it.
    fn flush(&mut self) -> Option<(String, Label, String)> {
        if self.lines.is_empty() {
            return None;
        }
        let whole = self.lines.join("\n");
        self.lines.clear();
        let label = self.label.take().unwrap_or(Label::Benign);
        Some((whole, label, std::mem::take(&mut self.source)))
    }
}

/// The three placements of one value, as items.
fn value_items(corpus: &str, value: &str, label: &Label, source: &str, f: &mut dyn FnMut(Item)) {
    let attack_type = match label {
        Label::Attack(t) => t.as_str(),
        _ => "",
    };
    let standalone = standalone(value, attack_type);
    for (placement, request) in placements(value) {
        f(Item {
            corpus: corpus.to_string(),
            group: placement.into(),
            label: label.clone(),
            standalone,
            request,
            value: Some(value.to_string()),
            source: source.to_string(),
            show: value.to_string(),
        });
    }
}

/// Reads a JSONL corpus (optionally gzip) and calls `f` per item.
/// `keep` filters on the line hash before parsing (cheap sampling).
pub fn read_jsonl(
    path: &Path,
    keep: &dyn Fn(u64) -> bool,
    f: &mut dyn FnMut(Item),
) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|x| x == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("corpus");
    let corpus = name.split('.').next().unwrap_or(name).to_string();
    let mut vectors = Vectors::default();
    for (n, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        let key = hash(line.as_bytes());
        if line.trim().is_empty() || !keep(key) {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        let label = match v.get("label").and_then(|x| x.as_str()) {
            Some("attack") => Label::Attack(
                v.get("attack_type")
                    .and_then(|x| x.as_str())
                    .unwrap_or("unknown")
                    .to_string(),
            ),
            _ => Label::Benign,
        };
        let source = v.get("source").and_then(|x| x.as_str()).unwrap_or("");
        if let Some(value) = v.get("value").and_then(|x| x.as_str()) {
            for (value, label, source) in vectors.push(value, &label, source) {
                value_items(&corpus, &value, &label, &source, f);
            }
        } else {
            let request = OwnedRequest::from_json(&v);
            let site = source
                .rsplit('/')
                .next()
                .unwrap_or(source)
                .trim_end_matches(".json")
                .to_string();
            let show = format!("{} {}?{}", request.method, request.path, request.query);
            f(Item {
                corpus: corpus.clone(),
                group: site,
                label,
                standalone: true,
                request,
                value: None,
                source: source.to_string(),
                show,
            });
        }
    }
    if let Some((value, label, source)) = vectors.flush() {
        value_items(&corpus, &value, &label, &source, f);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `(source, value)` records, returns the values emitted.
    fn joined(records: &[(&str, &str)]) -> Vec<String> {
        let label = Label::Attack("xss".into());
        let mut v = Vectors::default();
        let mut out: Vec<String> = records
            .iter()
            .flat_map(|(src, val)| v.push(val, &label, src))
            .map(|(val, _, _)| val)
            .collect();
        out.extend(v.flush().map(|(val, _, _)| val));
        out
    }

    #[test]
    fn html5sec_vectors_are_sent_whole() {
        let mario = "PayloadsAllTheThings/XSS Injection/Intruders/MarioXSSVectors.txt";
        let other = "PayloadsAllTheThings/XSS Injection/Intruders/other.txt";
        let got = joined(&[
            (mario, "<div id=\"1\"><svg>//[\"'`-->]]>]</div>"),
            (mario, "<div id=\"2\"><script>"),
            (mario, "alert(1)"),
            (mario, "</script>//[\"'`-->]]>]</div>"),
            (mario, "<div id=\"3\"><svg>"),
            (mario, "<a xlink:href=\"javascript:alert(3)\">"),
            (mario, "<div id=\"4\"><b>x</b>"),
            (other, "<div id=\"5\"><b>one line</b>"),
            (other, "plain second line"),
        ]);
        assert_eq!(
            got,
            [
                "<div id=\"1\"><svg>//[\"'`-->]]>]</div>",
                "<div id=\"2\"><script>\nalert(1)\n</script>//[\"'`-->]]>]</div>",
                "<div id=\"3\"><svg>\n<a xlink:href=\"javascript:alert(3)\">",
                "<div id=\"4\"><b>x</b>",
                "<div id=\"5\"><b>one line</b>",
                "plain second line",
            ]
        );
    }
}
