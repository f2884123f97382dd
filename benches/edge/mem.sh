#!/usr/bin/env bash
# Resident memory of fresh edge processes, split by mapping (docs/measurements/proxy.md, memory).
# For each round, each NAME=BINARY in turn (alternating, so a drift of the machine falls on every
# build alike): a fresh process started as a daemon runs (its own session, `setsid`), pinned to
# CPU 0, with examples/bench/edge-bench.toml's config (its ports and paths moved, below); its
# /proc/PID/smaps read 5 s after the `ready` line with no request ("idle"); with `--load SECS`
# also right after `wrk -t1 -c50 -dSECS` on CPU 1 ("after") and 5 s later ("+5s"); then SIGTERM.
# The split (MB): anon = anonymous mappings (the allocator's heap, thread stacks), text = the
# binary's executable mapping, data = its other mappings, libs = shared libraries, other = the
# rest (vdso, other files). `anon_big` is the largest anonymous mapping (the allocator's arena).
# Each binary is read whole into the page cache before it starts (see below).
# No allocator variable is set here: the edge sets its own (proxy/src/control/allocator.rs).
# Timed runs (--load) go through benches/quiet-run; an idle round is not timed.
# `--path '/search?q=…'` and `--header 'Cookie: …'` (repeatable) shape the load's request: the
# default `GET /` with Host opens no regex gate, so the WAF's search caches stay empty.
# usage: benches/edge/mem.sh [--rounds 5] [--load 60] [--waf block|detect|off] [--path P]
#            [--header H] NAME=BINARY ...
# env: PEERS_HOME (the peers' state dir: its pki/server.{crt,key}; default /var/tmp/rampart-peers),
#      PEERS_PORT_BASE (upstream at +80, started with `../shared/peers/start.sh upstream`),
#      MEM_PORT (the edge's TLS port, default PEERS_PORT_BASE+620; admin +1, plain +2),
#      MEM_DIR (config, logs; default a new directory under /var/tmp)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
rounds=5 load=0 waf=block bins=() path=/ hdrs=(-H 'Host: localhost')
while (($#)); do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --load) load=$2; shift 2 ;;
    --waf) waf=$2; shift 2 ;;
    --path) path=$2; shift 2 ;;
    --header) hdrs+=(-H "$2"); shift 2 ;;
    *=*) bins+=("$1"); shift ;;
    *) echo "$0: bad argument $1" >&2; exit 2 ;;
  esac
done
((${#bins[@]})) || { echo "usage: $0 [--rounds N] [--load SECS] [--waf MODE] NAME=BINARY ..." >&2; exit 2; }
peers=${PEERS_HOME:-/var/tmp/rampart-peers}
base=${PEERS_PORT_BASE:-38000}
port=${MEM_PORT:-$((base + 620))}
dir=${MEM_DIR:-$(mktemp -d /var/tmp/rampart-mem.XXXXXX)}
mkdir -p "$dir"
[[ -f $peers/pki/server.crt ]] || { echo "$0: no $peers/pki/server.crt (start the peers' upstream)" >&2; exit 2; }
curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$((base + 80))/" ||
  { echo "$0: no upstream on 127.0.0.1:$((base + 80))" >&2; exit 2; }
cfg=$dir/edge-mem.toml
sed -e "s|127.0.0.1:18443|127.0.0.1:$port|; s|127.0.0.1:19911|127.0.0.1:$((port + 1))|" \
  -e "s|127.0.0.1:18080|127.0.0.1:$((port + 2))|; s|127.0.0.1:38080|127.0.0.1:$((base + 80))|" \
  -e "s|/var/tmp/rampart-peers/pki|$peers/pki|; s|/tmp/rampart-bench-access.log|$dir/access.log|" \
  -e "s|^mode = \"block\"|mode = \"$waf\"|" "$repo/examples/bench/edge-bench.toml" > "$cfg"
grep -q "127.0.0.1:$port\"" "$cfg" && grep -q "^mode = \"$waf\"" "$cfg" ||
  { echo "$0: examples/bench/edge-bench.toml changed: could not move its ports" >&2; exit 1; }

# pid -> "rss=… anon=… text=… data=… libs=… other=… anon_big=… threads=…" (MB)
split() {
  python3 - "$1" <<'PY'
import os, re, sys
pid = sys.argv[1]
exe = os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
kb = {"anon": 0, "text": 0, "data": 0, "libs": 0, "other": 0}
big, cur, size = 0, None, 0
head = re.compile(r"^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ (\d+)\s*(.*)$")
for line in open(f"/proc/{pid}/smaps"):
    m = head.match(line)
    if m:
        perms, inode, path = m.group(1), m.group(2), m.group(3).strip()
        if path in ("[vdso]", "[vvar]", "[vsyscall]"):
            cur = "other"
        elif inode == "0" or path.startswith("["):
            cur = "anon"
        elif path == exe:
            cur = "text" if "x" in perms else "data"
        elif ".so" in path:
            cur = "libs"
        else:
            cur = "other"
        continue
    if line.startswith("Rss:"):
        v = int(line.split()[1])
        kb[cur] += v
        if cur == "anon":
            big = max(big, v)
total = sum(kb.values())
threads = len(os.listdir(f"/proc/{pid}/task"))
print(f"rss={total/1024:.2f} " + " ".join(f"{k}={v/1024:.2f}" for k, v in kb.items())
      + f" anon_big={big/1024:.2f} threads={threads}")
PY
}

echo "# mem.sh: $rounds rounds, waf=$waf, load ${load}s on $path (${hdrs[*]}), port $port, config $cfg; loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= rounds; r++)); do
  for arg in "${bins[@]}"; do
    name=${arg%%=*} bin=${arg#*=}
    log=$dir/log-$name-$r.txt
    # The whole binary into the page cache first: a fault in the binary maps the pages around
    # it that are cached (fault-around), so its text and data figures depend on what is cached;
    # with all of it cached they are the largest and the same for every build.
    cat "$bin" > /dev/null
    setsid taskset -c 0 "$bin" run --config "$cfg" > "$log" 2>&1 &
    pid=$!
    ready=0
    : >> "$log"
    for _ in $(seq 1 300); do
      grep -q "rampart-proxy: ready" "$log" && { ready=1; break; }
      kill -0 $pid 2>/dev/null || break
      sleep 0.1
    done
    if ((!ready)); then
      echo "$0: $name did not get ready; its log:" >&2; tail -5 "$log" >&2
      kill -TERM $pid 2>/dev/null; exit 1
    fi
    sleep 5
    echo "round $r $name idle  $(split $pid)"
    if ((load > 0)); then
      w=$(timeout $((load + 30)) taskset -c 1 wrk -t1 -c50 -d${load}s "${hdrs[@]}" "https://127.0.0.1:$port$path" |
        grep -E "Requests/sec|Non-2xx|Socket errors" | tr -s ' ' | tr '\n' ';')
      echo "round $r $name after $(split $pid) wrk: $w"
      sleep 5
      echo "round $r $name +5s   $(split $pid)"
    fi
    # whether the WAF answers (403 in block mode), asked after the readings
    code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 5 -H 'Host: localhost' \
      "https://127.0.0.1:$port/?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    echo "round $r $name attack-request status $code"
    kill -TERM $pid
    wait $pid 2>/dev/null || true
    sleep 1
  done
done
echo "# done; loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
