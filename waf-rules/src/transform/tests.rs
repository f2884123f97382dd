use super::*;

fn run(t: Transform, s: &str) -> String {
    String::from_utf8_lossy(&apply_chain(&[t], s.as_bytes())).into_owned()
}

#[test]
fn url_decode_nested_unicode_and_overlong() {
    assert_eq!(run(Transform::UrlDecode, "%253Cscript%253E"), "<script>");
    assert_eq!(run(Transform::UrlDecode, "%u003cimg"), "<img");
    assert_eq!(run(Transform::UrlDecode, "%c0%ae%c0%ae/"), "../");
    assert_eq!(run(Transform::UrlDecode, "100%"), "100%");
    assert_eq!(run(Transform::UrlDecode, "＜script＞"), "<script>");
    assert!(matches!(
        apply_chain(&[Transform::UrlDecode], b"plain"),
        Cow::Borrowed(_)
    ));
}

/// Each step on its own: (step, input, expected output).
#[test]
fn single_steps() {
    use Transform::*;
    const ENTITIES: &str = "&lt;a&#32;href&#x3d;&quot;x&colon;";
    const SCRIPT_B64: &str = "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==";
    const MYSQL_COMMENTS: &str = "union/**/select/*!50000 user()*/";
    const WINDOWS_CLIMB: &str = r"..\..\windows\win.ini";
    let cases: &[(Transform, &str, &str)] = &[
        (HtmlEntities, ENTITIES, "<a href=\"x:"),
        (HtmlEntities, "&#106&#97;", "ja"),
        (HtmlEntities, "fish & chips", "fish & chips"),
        (JsDecode, r"\x61\u006cert\u{28}1)", "alert(1)"),
        (CssDecode, r"\6a avascript", "javascript"),
        // Base64 only when the whole value is plain base64 of text.
        (Base64, SCRIPT_B64, "<script>alert(1)</script>"),
        (Base64, "helloworldhello", "helloworldhello"),
        (SqlComments, MYSQL_COMMENTS, "union select  user() "),
        (CompressWhitespace, "a \t\n b", "a b"),
        (RemoveNulls, "a\0b", "ab"),
        (Lowercase, "SeLeCT", "select"),
        (NormalizePath, "/a/./b//c/../d", "/a/b/d"),
        (NormalizePath, WINDOWS_CLIMB, "../../windows/win.ini"),
        (CmdLine, "c'a'\"t\"${IFS}/e\\tc/pa^sswd", "cat /etc/passwd"),
        (CmdLine, "cat$IFS/etc/passwd", "cat /etc/passwd"),
        (CmdLine, "a\nid", "a\nid"),
    ];
    for &(t, input, want) in cases {
        assert_eq!(run(t, input), want, "{} of {input:?}", t.name());
    }
}

#[test]
fn a_step_changes_nothing_without_its_trigger_bytes() {
    let all = Transform::ALL;
    // Deterministic pseudo-random values over every byte.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || crate::test_support::xorshift(&mut seed);
    for t in all {
        let Some(trigger) = t.trigger_bytes() else {
            continue;
        };
        for _ in 0..3000 {
            let len = (next() % 24) as usize;
            let v: Vec<u8> = (0..len)
                .map(|_| next() as u8)
                .filter(|b| !trigger.contains(b))
                .collect();
            assert_eq!(t.apply(&v), None, "{} changed {v:?}", t.name());
            let mut out = Vec::new();
            assert!(!t.apply_into(&v, &mut out), "{} changed {v:?}", t.name());
        }
    }
}

#[test]
fn iis_loose_hex_overlongs_decode_to_ascii() {
    let d = |v: &[u8]| super::url::decode_repeated(v).unwrap_or_else(|| v.to_vec());
    assert_eq!(d(b"\\..%bg%qf\\..%c0%9vetc"), b"\\../\\../etc");
    assert_eq!(d(b"..%c1%1c..%c1%pcwin"), b"..\\..\\win");
    assert_eq!(d(b"un%ion se%lect <%script>"), b"union select <script>");
    assert_eq!(d(b"50%off 100% sure"), b"50%off 100% sure");
}

/// `decode_repeated` runs another round only when the last one left a '%'
/// or an overlong lead byte, and folds full-width forms only when a 0xEF
/// is left: the edges are values whose decoding makes those bytes.
#[test]
fn decoding_stops_when_a_round_can_change_nothing() {
    let d = |v: &[u8]| super::url::decode_repeated(v).unwrap_or_else(|| v.to_vec());
    let cases: &[(&[u8], &[u8])] = &[
        // Another round only while a '%' is left (at most three).
        (b"%2527", b"'"),
        (b"%25252527", b"%27"),
        (b"%uff0527", b"'"),
        // An overlong lead byte, made by a round or sent as it is.
        (b"%25c0%25af", b"/"),
        (b"\xc0\xafetc", b"/etc"),
        (b"a%c0", b"a\xc0"),
        // A full-width form, made by a round or sent as it is.
        (b"%ef%bc%8fetc", b"/etc"),
        (b"%25ef%25bc%258f", b"/"),
        (b"\xef\xbc\x8f%41", b"/A"),
        (b"\xef\xbc\x85%32%37", b"%27"),
    ];
    for &(v, want) in cases {
        assert_eq!(d(v), want, "{:?}", String::from_utf8_lossy(v));
    }
    // Entities: the text before the first reference is kept as it is.
    let e = |v: &str| run(Transform::HtmlEntities, v);
    assert_eq!(e("a=1&b=2&lt;x"), "a=1&b=2<x");
    assert_eq!(e("&&amp;&"), "&&&");
    assert_eq!(e("fish & chips &amp; more"), "fish & chips & more");
    assert_eq!(e("a=1&b=2"), "a=1&b=2");
}

/// The one-pass checks that decide whether a step can change a value
/// answer as the formulas they replaced, on seeded values over the bytes
/// they look at.
#[test]
fn one_pass_prechecks_answer_as_before() {
    let space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0xa0);
    let cmd = b"'\"^\\$`,;\t\n+\r";
    let mut seed = 0x0c0f_fee0_0000_0005u64;
    let alphabet = b"a/.\\ \t\n\r\x0b\x0c\xa0'\"^$`,;+Zz_";
    let mut found = [0usize; 3];
    for _ in 0..60_000 {
        let r = crate::test_support::xorshift(&mut seed);
        let v: Vec<u8> = (0..(r % 12) as usize)
            .map(|i| alphabet[((r >> (4 + i * 5)) % alphabet.len() as u64) as usize])
            .collect();
        let path =
            v.contains(&b'\\') || v.windows(2).any(|w| w == b"//" || w == b"./" || w == b"/.");
        let blanks = v.windows(2).any(|w| space(w[0]) && space(w[1]))
            || v.iter().any(|&b| space(b) && b != b' ');
        let shell = v.iter().any(|b| cmd.contains(b) || b.is_ascii_uppercase());
        assert_eq!(super::path::suspicious(&v), path, "{v:?}");
        assert_eq!(super::text::compressible(&v), blanks, "{v:?}");
        assert_eq!(
            v.iter().any(|&b| super::cmdline::NEEDS[usize::from(b)]),
            shell,
            "{v:?}"
        );
        for (k, yes) in [path, blanks, shell].into_iter().enumerate() {
            found[k] += usize::from(yes);
        }
    }
    assert!(found.iter().all(|&n| n > 5000 && n < 55_000), "{found:?}");
    for b in 0..=255u8 {
        assert_eq!(
            super::cmdline::NEEDS[usize::from(b)],
            cmd.contains(&b) || b.is_ascii_uppercase()
        );
    }
}
