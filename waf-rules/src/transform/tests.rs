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

#[test]
fn html_entities() {
    assert_eq!(
        run(
            Transform::HtmlEntities,
            "&lt;a&#32;href&#x3d;&quot;x&colon;"
        ),
        "<a href=\"x:"
    );
    assert_eq!(run(Transform::HtmlEntities, "&#106&#97;"), "ja");
    assert_eq!(run(Transform::HtmlEntities, "fish & chips"), "fish & chips");
}

#[test]
fn js_and_css_escapes() {
    assert_eq!(
        run(Transform::JsDecode, r"\x61\u006cert\u{28}1)"),
        "alert(1)"
    );
    assert_eq!(run(Transform::CssDecode, r"\6a avascript"), "javascript");
}

#[test]
fn base64_only_when_plain() {
    assert_eq!(
        run(Transform::Base64, "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="),
        "<script>alert(1)</script>"
    );
    assert_eq!(run(Transform::Base64, "helloworldhello"), "helloworldhello");
}

#[test]
fn comments_whitespace_nulls() {
    assert_eq!(
        run(Transform::SqlComments, "union/**/select/*!50000 user()*/"),
        "union select  user() "
    );
    assert_eq!(run(Transform::CompressWhitespace, "a \t\n b"), "a b");
    assert_eq!(run(Transform::RemoveNulls, "a\0b"), "ab");
    assert_eq!(run(Transform::Lowercase, "SeLeCT"), "select");
}

#[test]
fn paths_and_command_lines() {
    assert_eq!(run(Transform::NormalizePath, "/a/./b//c/../d"), "/a/b/d");
    assert_eq!(
        run(Transform::NormalizePath, "..\\..\\windows\\win.ini"),
        "../../windows/win.ini"
    );
    assert_eq!(
        run(Transform::CmdLine, "c'a'\"t\"${IFS}/e\\tc/pa^sswd"),
        "cat /etc/passwd"
    );
    assert_eq!(
        run(Transform::CmdLine, "cat$IFS/etc/passwd"),
        "cat /etc/passwd"
    );
    assert_eq!(run(Transform::CmdLine, "a\nid"), "a\nid");
}

#[test]
fn a_step_changes_nothing_without_its_trigger_bytes() {
    let all = Transform::ALL;
    // Deterministic pseudo-random values over every byte.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
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
