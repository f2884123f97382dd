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
