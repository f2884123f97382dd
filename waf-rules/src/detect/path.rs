//! Path traversal and local file inclusion by path grammar: read the value
//! as the file API behind us would once every spelling of a dot and of a
//! separator is folded, then look for what an inclusion needs — a segment
//! that climbs (`..`, `..?`, `?.`, dots with control bytes between them)
//! followed by a separator, or a path that names a system file or reaches
//! into a system directory from the root.
//!
//! Spellings folded (the value arrives percent-decoded, `%uXXXX` and
//! overlong UTF-8 already read): separators `/`, `\`, the hex literals
//! `0x2f` / `0x5c` of fuzzers, and the Unicode look-alikes servers
//! best-fit map to a slash (U+2215 division slash, U+2216 set minus,
//! U+2044 fraction slash, U+29F5, U+FE68, U+FF0F, U+FF3C, and the private
//! U+EFC8 / U+F025 of IIS), an escape whose digits were escaped one by
//! one (`%%32%%66`, read as `%2%f`); dots `.`, `0x2e`, `%2%e`, U+FF0E,
//! U+2024, U+FE52.
//! Inside a climbing segment, `?` and `*` are wildcards (Windows matches
//! `?.` against `..`) and control bytes are dropped, as some decoders do.
//!
//! A lone `../` is a traversal (rule 4001 says so too). A segment made of
//! one dot and wildcards (`?.\`, `.?/`, `??\`) climbs only on some servers:
//! it counts when it repeats or leads to a system file. Without any climb,
//! a path counts when it names a system file by its path (`etc/passwd`,
//! `windows\system32`, `proc/self/…`, `web-inf/web.xml`, `boot.ini`) or
//! starts at a root and enters a system directory (`/var/…`, `/etc/…`,
//! `C:\Windows`, `\xampp\…`, `C:/documents and settings/…`); an ordinary
//! upload name (`C:\fakepath\cv.pdf`, `C:\Users\me\Documents\a.pdf`) or a
//! site path (`/library/books`) does not.
//!
//! Linear and bounded: one pass to read units, components capped in count
//! and length.

use std::cell::RefCell;
use std::ops::Range;

/// Components kept for the target check; a deeper path keeps its first ones.
const MAX_COMPONENTS: usize = 64;
/// Bytes kept of one component (longer names are no system file).
const MAX_COMPONENT: usize = 48;
/// Units of one climbing segment (`.%01.%01.?` …).
const MAX_CLIMB_UNITS: usize = 16;

/// What `worth_reading` (and, for `detect_climb`, a separator unit)
/// needs: a slash or backslash, a `%` (`%%32%%66`), the `0` of `0x2f` /
/// `0x2e`, or a non-ASCII look-alike dot or separator.
pub(crate) const TRIGGERS: super::Triggers = super::Triggers {
    bytes: b"/\\%0",
    non_ascii: true,
};

/// Whether `v` reads as path traversal or a system-file path (fuzzing entry point).
pub fn is_path_attack(v: &[u8]) -> bool {
    detect(v).is_some()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Unit {
    Sep,
    Dot,
    Wild,
    Junk,
    Byte(u8),
}

/// Multi-byte spellings of a separator or a dot.
const SEPARATORS: &[&[u8]] = &[
    b"0x2f",
    b"0x5c",
    "\u{2215}".as_bytes(),
    "\u{2216}".as_bytes(),
    "\u{2044}".as_bytes(),
    "\u{29f5}".as_bytes(),
    "\u{fe68}".as_bytes(),
    "\u{ff0f}".as_bytes(),
    "\u{ff3c}".as_bytes(),
    "\u{efc8}".as_bytes(),
    "\u{f025}".as_bytes(),
];
const DOTS: &[&[u8]] = &[
    b"0x2e",
    "\u{ff0e}".as_bytes(),
    "\u{2024}".as_bytes(),
    "\u{fe52}".as_bytes(),
];

/// The unit at `v[i..]` and its length in bytes.
fn unit_at(v: &[u8], i: usize) -> (Unit, usize) {
    let b = v[i];
    match b {
        b'/' | b'\\' => return (Unit::Sep, 1),
        b'.' => return (Unit::Dot, 1),
        b'?' | b'*' => return (Unit::Wild, 1),
        0..=0x1f | 0x7f => return (Unit::Junk, 1),
        // An escape whose two digits were escaped one by one (`%%32%%66`
        // decodes to `%2%f`): a dot or a separator, four bytes.
        b'%' => {
            let hex = |k: usize| v.get(i + k).and_then(|&c| (c as char).to_digit(16));
            if let (Some(h), Some(b'%'), Some(l)) = (hex(1), v.get(i + 2), hex(3)) {
                match h << 4 | l {
                    0x2e => return (Unit::Dot, 4),
                    0x2f | 0x5c => return (Unit::Sep, 4),
                    _ => {}
                }
            }
        }
        b'0' | 0xe2 | 0xee | 0xef => {
            let rest = &v[i..];
            let starts =
                |p: &&&[u8]| rest.len() >= p.len() && rest[..p.len()].eq_ignore_ascii_case(p);
            if let Some(p) = SEPARATORS.iter().find(starts) {
                return (Unit::Sep, p.len());
            }
            if let Some(p) = DOTS.iter().find(starts) {
                return (Unit::Dot, p.len());
            }
        }
        _ => {}
    }
    (Unit::Byte(b.to_ascii_lowercase()), 1)
}

/// Bytes after which a climbing segment starts a path (as in rule 4001).
fn opens_path(b: u8) -> bool {
    matches!(
        b,
        b'=' | b':'
            | b'\''
            | b'"'
            | b' '
            | b'\t'
            | b'('
            | b','
            | b';'
            | b'|'
            | b'>'
            | b'&'
            | b'%'
            | b'+'
    )
}

/// The folded components of a path, in one buffer (no allocation per
/// component; the buffers are reused across calls on a thread).
#[derive(Default)]
struct Comps {
    buf: Vec<u8>,
    spans: Vec<(usize, usize)>,
}

impl Comps {
    fn len(&self) -> usize {
        self.spans.len()
    }

    fn get(&self, k: usize) -> Option<&[u8]> {
        self.spans.get(k).map(|&(a, b)| &self.buf[a..b])
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.spans.iter().map(|&(a, b)| &self.buf[a..b])
    }
}

/// One folded path: its components and whether and how it climbs.
#[derive(Default)]
struct Reading {
    comps: Comps,
    /// Byte offset where each component starts.
    starts: Vec<usize>,
    /// Segments of two or more dots followed by a separator.
    strong: usize,
    /// Segments of one dot and wildcards, or wildcards only, before a separator.
    weak: usize,
    first_climb: Option<usize>,
    /// The path starts with a backslash (`\\xampp\\…`): a Windows root.
    backslash_root: bool,
}

fn read(v: &[u8], r: &mut Reading) {
    r.comps.buf.clear();
    r.comps.spans.clear();
    r.starts.clear();
    (r.strong, r.weak, r.first_climb, r.backslash_root) = (0, 0, None, false);
    // The component being read is `r.comps.buf[cur..]`.
    let mut cur = 0usize;
    let mut comp_start = 0usize;
    // The trailing run of dot / wildcard / junk units of the current
    // component, and whether it began at a path boundary.
    let (mut dots, mut wild, mut units) = (0usize, 0usize, 0usize);
    let mut run_start = 0usize;
    let mut run_open = true;
    let mut prev: Option<Unit> = None;
    let mut i = 0;
    while i < v.len() {
        let (u, len) = unit_at(v, i);
        match u {
            Unit::Sep => {
                if units > 0 && run_open && (dots + wild) >= 2 && units <= MAX_CLIMB_UNITS {
                    if dots >= 2 {
                        r.strong += 1;
                    } else {
                        r.weak += 1;
                    }
                    r.first_climb.get_or_insert(run_start);
                }
                let buf = &mut r.comps.buf;
                if r.comps.spans.is_empty() && buf.len() == cur {
                    r.backslash_root = v[i] == b'\\';
                }
                if r.comps.spans.len() < MAX_COMPONENTS {
                    r.comps.spans.push((cur, buf.len()));
                    r.starts.push(comp_start);
                    cur = buf.len();
                } else {
                    buf.truncate(cur);
                }
                comp_start = i + len;
                (dots, wild, units) = (0, 0, 0);
                run_open = true;
                run_start = i + len;
            }
            Unit::Dot | Unit::Wild | Unit::Junk => {
                if units == 0 {
                    run_start = i;
                    run_open = match prev {
                        None | Some(Unit::Sep) => true,
                        Some(Unit::Byte(b)) => opens_path(b),
                        Some(_) => true,
                    };
                }
                units += 1;
                match u {
                    Unit::Dot => {
                        dots += 1;
                        if r.comps.buf.len() - cur < MAX_COMPONENT {
                            r.comps.buf.push(b'.');
                        }
                    }
                    Unit::Wild => {
                        wild += 1;
                        if r.comps.buf.len() - cur < MAX_COMPONENT {
                            r.comps.buf.push(v[i]);
                        }
                    }
                    _ => {}
                }
            }
            Unit::Byte(b) => {
                (dots, wild, units) = (0, 0, 0);
                if matches!(
                    b,
                    b'=' | b'\'' | b'"' | b'(' | b',' | b';' | b'|' | b'>' | b'&'
                ) {
                    // `file=/etc/passwd`, `"C:\…`: a new path may start here.
                    r.comps.buf.truncate(cur);
                    comp_start = i + 1;
                } else if r.comps.buf.len() - cur < MAX_COMPONENT {
                    r.comps.buf.push(b);
                }
            }
        }
        prev = Some(u);
        i += len;
    }
    if r.comps.spans.len() < MAX_COMPONENTS {
        r.comps.spans.push((cur, r.comps.buf.len()));
        r.starts.push(comp_start);
    }
}

thread_local! {
    /// Buffers of `read`, reused: the detector runs on most punctuated values.
    static SCRATCH: RefCell<Reading> = RefCell::new(Reading::default());
}

/// Reads `v` into this thread's buffers and asks `f` about it.
fn with_reading<T>(v: &[u8], f: impl Fn(&Reading) -> T) -> T {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut r) => {
            read(v, &mut r);
            f(&r)
        }
        Err(_) => {
            let mut r = Reading::default();
            read(v, &mut r);
            f(&r)
        }
    })
}

pub(crate) fn detect(v: &[u8]) -> Option<Range<usize>> {
    if !worth_reading(v) {
        return None;
    }
    with_reading(v, |r| climb(v, r).or_else(|| target(v, r)))
}

/// One cheap pass deciding whether `read` can find anything: most values
/// with a slash (user agents, media types, URLs) have no run of two dots
/// or wildcards, no root and no system name, and are not read further.
/// Any escape, hex literal or non-ASCII byte (a look-alike dot or
/// separator) sends the value to `read`.
fn worth_reading(v: &[u8]) -> bool {
    let (mut sep, mut pair, mut prev_dot) = (false, false, false);
    for (k, &b) in v.iter().enumerate() {
        let dot = matches!(b, b'.' | b'?' | b'*' | 0..=0x1f | 0x7f);
        match b {
            b'/' | b'\\' => sep = true,
            b'%' | 0x80..=0xff => return true,
            b'0' if matches!(v.get(k + 1), Some(b'x' | b'X')) => return true,
            _ => {}
        }
        pair |= dot && prev_dot;
        prev_dot = dot;
    }
    if !sep {
        return false;
    }
    let rooted = matches!(v.first(), Some(b'/' | b'\\'))
        || v.get(1) == Some(&b':')
        || v.starts_with(b"file:");
    pair || rooted || system_words().is_some_and(|ac| ac.is_match(v))
}

/// Names `system_file` and `rooted_system_dir` look for after a separator
/// or as a file (the value is lowercased by the rule's transforms).
fn system_words() -> Option<&'static aho_corasick::AhoCorasick> {
    static AC: std::sync::OnceLock<Option<aho_corasick::AhoCorasick>> = std::sync::OnceLock::new();
    AC.get_or_init(|| {
        aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build([
                "etc/",
                "etc\\",
                "proc/",
                "proc\\",
                "windows/",
                "windows\\",
                "winnt/",
                "winnt\\",
                "web-inf/",
                "web-inf\\",
                "meta-inf/",
                "meta-inf\\",
                ".ini",
                ".dat",
                ".sys",
                ".bat",
                "unattend",
                "sysprep",
            ])
            .ok()
    })
    .as_ref()
}

/// Only a climb, for the request path: a site's own path may well start
/// with `/var/` or `/boot/` (a shoe shop), a parameter's may not.
pub(crate) fn detect_climb(v: &[u8]) -> Option<Range<usize>> {
    with_reading(v, |r| climb(v, r))
}

fn climb(v: &[u8], r: &Reading) -> Option<Range<usize>> {
    let at = r.first_climb?;
    (r.strong > 0 || r.weak >= 2 || system_file(&r.comps).is_some())
        .then(|| at..v.len().min(at + 64))
}

fn target(v: &[u8], r: &Reading) -> Option<Range<usize>> {
    if let Some(k) = system_file(&r.comps) {
        let at = r.starts[k];
        return Some(at..v.len().min(at + 64));
    }
    rooted_system_dir(&r.comps, r.backslash_root).map(|k| {
        let at = r.starts[k];
        at..v.len().min(at + 64)
    })
}

/// Files under `etc/` that disclose accounts, hosts or configuration.
const ETC_FILES: &[&[u8]] = &[
    b"passwd",
    b"shadow",
    b"group",
    b"gshadow",
    b"hosts",
    b"issue",
    b"motd",
    b"hostname",
    b"crontab",
    b"sudoers",
    b"fstab",
    b"mtab",
    b"resolv.conf",
    b"os-release",
    b"lsb-release",
    b"profile",
    b"master.passwd",
    b"environment",
    b"inittab",
    b"httpd",
    b"apache",
    b"apache2",
    b"nginx",
    b"mysql",
    b"ssh",
    b"security",
    b"pam.d",
    b"shells",
    b"aliases",
    b"exports",
    b"my.cnf",
];

/// Windows files that exist on every system and are read to prove an inclusion.
const WINDOWS_FILES: &[&[u8]] = &[
    b"boot.ini",
    b"win.ini",
    b"system.ini",
    b"ntuser.dat",
    b"ntuser.ini",
    b"desktop.ini",
    b"pagefile.sys",
    b"hiberfil.sys",
    b"autoexec.bat",
    b"unattend.xml",
    b"unattend.txt",
    b"unattended.xml",
    b"unattended.txt",
    b"sysprep.inf",
    b"sysprep.xml",
];

fn is_digits(c: &[u8]) -> bool {
    !c.is_empty() && c.iter().all(u8::is_ascii_digit)
}

fn one_of(c: &[u8], set: &[&[u8]]) -> bool {
    set.contains(&c)
}

/// The index of the component where a system file's path begins: `etc/passwd`,
/// `proc/self/…`, `windows/system32`, `web-inf/web.xml`, `boot.ini`.
fn system_file(comps: &Comps) -> Option<usize> {
    for (k, c) in comps.iter().enumerate() {
        let next = comps.get(k + 1);
        // `....web-inf/web.xml`: dots left where a fuzzer stripped the slashes.
        let c = c.trim_ascii_start();
        let c = &c[c.iter().take_while(|&&b| b == b'.').count()..];
        let hit = match c {
            b"etc" => next.is_some_and(|n| one_of(n, ETC_FILES)),
            b"proc" => next.is_some_and(|n| {
                (n == b"self" || n == b"thread-self" || is_digits(n)) && comps.len() > k + 2
            }),
            b"windows" | b"winnt" => next.is_some_and(|n| {
                one_of(
                    n,
                    &[
                        b"system32",
                        b"system",
                        b"syswow64",
                        b"sysnative",
                        b"repair",
                        b"panther",
                        b"debug",
                        b"win.ini",
                        b"system.ini",
                        b"php.ini",
                    ],
                )
            }),
            b"web-inf" | b"meta-inf" => next.is_some_and(|n| {
                one_of(
                    n,
                    &[
                        b"web.xml",
                        b"classes",
                        b"lib",
                        b"context.xml",
                        b"manifest.mf",
                    ],
                )
            }),
            c => one_of(c, WINDOWS_FILES) && !(k == 0 && comps.len() == 1),
        };
        if hit {
            return Some(k);
        }
    }
    None
}

/// Windows top-level folders that hold the system, installed servers or
/// other users' data.
const WINDOWS_ROOTS: &[&[u8]] = &[
    b"windows",
    b"winnt",
    b"program files",
    b"program files (x86)",
    b"programfiles",
    b"programdata",
    b"documents and settings",
    b"system volume information",
    b"$recycle.bin",
    b"recycler",
    b"inetpub",
    b"xampp",
    b"wamp",
    b"wamp64",
    b"mysql",
    b"php",
    b"php4",
    b"php5",
    b"apache",
    b"apache2",
    b"tomcat",
    b"minint",
    b"sysprep",
];

/// A path from a root that enters a system directory: the index of its
/// first component.
fn rooted_system_dir(comps: &Comps, backslash_root: bool) -> Option<usize> {
    // Rooted: the value's path starts with a separator (first component
    // empty) or with a drive (`c:`), perhaps behind a `file:` scheme.
    let mut k = 0;
    let first = comps.get(0)?;
    let drive = |c: &[u8]| c.len() == 2 && c[0].is_ascii_alphabetic() && c[1] == b':';
    if drive(first) || first == b"file:" {
        k = 1;
    } else if !first.is_empty() {
        return None;
    } else {
        k += 1;
    }
    // `file:///etc/…`, `/c:/…`: skip empty components and one drive.
    while comps.get(k).is_some_and(|c| c.is_empty()) {
        k += 1;
    }
    let windows = comps.get(k).is_some_and(drive) || drive(first) || backslash_root;
    if comps.get(k).is_some_and(drive) {
        k += 1;
    }
    let root = comps.get(k)?;
    let next = comps.get(k + 1);
    let has_next = next.is_some_and(|n| !n.is_empty());
    if windows && (one_of(root, WINDOWS_ROOTS) || one_of(root, WINDOWS_FILES)) {
        return Some(k);
    }
    if windows && root == b"users" {
        // Another user's profile data, not an upload path under Documents.
        let deep = comps.iter().skip(k).any(|c| {
            one_of(
                c,
                &[
                    b"appdata",
                    b"application data",
                    b"ntuser.dat",
                    b"ntuser.ini",
                ],
            ) || one_of(c, WINDOWS_FILES)
        });
        return deep.then_some(k);
    }
    if windows {
        return None;
    }
    let hit = match root {
        b"etc" | b"var" | b"root" | b"boot" | b"proc" | b"srv" => has_next,
        b"usr" => next.is_some_and(|n| {
            one_of(
                n,
                &[
                    b"local", b"bin", b"sbin", b"lib", b"lib64", b"share", b"spool", b"src",
                    b"etc", b"home", b"ports", b"pkgsrc",
                ],
            )
        }),
        b"private" => next.is_some_and(|n| one_of(n, &[b"etc", b"var", b"tmp"])),
        b"sys" => next.is_some_and(|n| {
            one_of(
                n,
                &[
                    b"class", b"kernel", b"devices", b"block", b"fs", b"power", b"module",
                ],
            )
        }),
        b"dev" => next.is_some_and(|n| {
            one_of(
                n,
                &[
                    b"null", b"zero", b"random", b"urandom", b"tcp", b"udp", b"shm", b"fd",
                    b"stdin", b"stdout", b"stderr", b"mem", b"kmem",
                ],
            )
        }),
        _ => false,
    };
    hit.then_some(k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::test_support::assert_each;

    #[test]
    fn traversal_in_any_spelling_is_found() {
        assert_each(
            is_path_attack,
            true,
            &[
                "../../etc/passwd",
                "..\\..\\windows\\win.ini",
                "..0x2f..0x2fetc0x2fpasswd",
                "0x2e0x2e0x5cboot.ini",
                "?.\\?.\\etc\\passwd",
                ".?/etc/issue",
                "??\u{2216}??\u{2216}etc\u{2216}passwd",
                "..\u{2216}..\u{2216}etc\u{2216}passwd",
                "/..\u{efc8}boot.ini",
                "\\..\u{f025}etc\u{f025}passwd",
                "%2%e%2%e%2%fetc%2%fpasswd",
                "\\..%5%c..%5%cboot.ini",
                "..\x01\\etc\\passwd",
                "file=..\x01/..\x01/x",
                "etc\\passwd",
                "....web-inf/web.xml",
                "/proc/self/environ",
            ],
        );
    }

    #[test]
    fn rooted_system_paths_are_found() {
        assert_each(
            is_path_attack,
            true,
            &[
                "C:/documents and settings/administrator/ntuser.dat",
                "C:\\MySQL\\data\\mysql.err",
                "C:\\ProgramFiles\\MySQL\\data\\mysql.log",
                "\\xampp\\phpMyAdmin\\config.inc.php",
                "C:/sysprep.inf",
                "C:/$recycle.bin/s-1-5-18/desktop.ini",
                "C:/users/administrator/desktop/desktop.ini",
                "/var/cpanel/cpanel.config",
                "/private/var/log/appstore.log",
                "file:///etc/hosts",
                "/C:\\Program Files\\",
            ],
        );
    }

    #[test]
    fn ordinary_paths_and_text_pass() {
        for v in [
            "C:\\fakepath\\holiday photo.jpg",
            "C:\\Users\\anna\\Documents\\cv.pdf",
            "/library/books/42",
            "/windows/download/setup.exe",
            "docs/windows/system-requirements",
            "Loading.../please wait",
            "see ./src/main.rs and ../README.md?",
            "v1.2.3",
            "https://example.com/a/b/c.html",
            "/etc",
            "what?/why",
            "1.5.0/lib/etc.js",
            "/dev/docs/api",
            "/users/42/settings",
            "0x2f3e4d",
        ] {
            // A relative `../README.md` is a climb; everything else must pass.
            let expect = v.contains(" ../");
            assert_eq!(is_path_attack(v.as_bytes()), expect, "{v:?}");
        }
    }

    #[test]
    fn long_inputs_stay_bounded() {
        let v = "..?".repeat(100_000) + "x";
        assert!(!is_path_attack(v.as_bytes()) || v.contains('/'));
        let v = "a/".repeat(200_000);
        assert!(!is_path_attack(v.as_bytes()));
        let v = "0x2".repeat(100_000);
        assert!(!is_path_attack(v.as_bytes()));
    }
}
