#!/usr/bin/env python3
"""Per-leg medians of one request through a forwarder pair, from `perf script` output of
`perf trace record` (see legs.sh): usage legs.py ROLES TRACE."""
import re, sys, statistics
roles = {}
for line in open(sys.argv[1]):
    tid, role = line.split()
    roles.setdefault(int(tid), set()).add(role)
# perf script: "comm tid [cpu] secs.usecs: raw_syscalls:sys_enter: NR n (...)" / "sys_exit: NR n = ret"
pat = re.compile(r'^\s*\S.*?\s(\d+)\s+\[\d+\]\s+([\d.]+):\s+raw_syscalls:sys_(enter|exit):\s+NR (\d+)(?: .*= (-?\d+))?')
names = {0: 'read', 1: 'write', 7: 'poll', 19: 'readv', 20: 'writev', 40: 'sendfile', 44: 'sendto',
         45: 'recvfrom', 46: 'sendmsg', 47: 'recvmsg', 232: 'epoll_wait', 271: 'ppoll', 281: 'epoll_pwait'}
waits = {'epoll_wait', 'epoll_pwait', 'poll', 'ppoll'}
sends = {'write', 'writev', 'sendto', 'sendmsg', 'sendfile'}
ev = []  # (start, end, tid, name, ret) in µs
entered = {}
for line in open(sys.argv[2]):
    m = pat.match(line)
    if not m:
        continue
    tid, ts, kind, nr = int(m.group(1)), float(m.group(2)) * 1e6, m.group(3), int(m.group(4))
    if kind == 'enter':
        entered[tid] = (nr, ts)
    else:
        nr0, start = entered.pop(tid, (nr, None))
        if start is None or nr0 != nr or nr not in names:
            continue
        ev.append((start, ts, tid, names[nr], int(m.group(5) or 0)))
ev.sort(key=lambda e: e[1])
def of(role, kinds):
    return [e for e in ev if role in roles.get(e[2], ()) and e[3] in kinds and e[4] > 0]
wakes = {r: of(r, waits) for r in 'CSU'}
csend = of('K', {'write', 'sendto'})
cread = of('K', {'read', 'recvfrom'})
sends_by_tid = {}
for e in ev:
    if e[3] in sends and e[4] > 0:
        sends_by_tid.setdefault(e[2], []).append(e)
import bisect
_keys = {}
def first_after(lst, t):
    """The first event of `lst` (sorted by end) that ends after `t`."""
    keys = _keys.get(id(lst))
    if keys is None:
        keys = _keys[id(lst)] = [e[1] for e in lst]
    i = bisect.bisect_right(keys, t)
    return lst[i] if i < len(lst) else None
chain = [('C', 'client side, request'), ('S', 'server side, request'), ('U', 'upstream'),
         ('S', 'server side, response'), ('C', 'client side, response')]
legs = {i: ([], []) for i in range(len(chain))}
last_hop, totals = [], []
for w in csend:
    t = w[1]
    ok, got = True, []
    for i, (role, _) in enumerate(chain):
        wake = first_after(wakes[role], t)
        if wake is None:
            ok = False
            break
        send = first_after(sends_by_tid.get(wake[2], []), wake[1])
        if send is None:
            ok = False
            break
        got.append((wake[1] - t, send[1] - wake[1]))
        t = send[1]
    r = first_after(cread, t) if ok else None
    if r is None or r[1] - w[0] > 5000:
        continue
    for i, (hop, own) in enumerate(got):
        legs[i][0].append(hop)
        legs[i][1].append(own)
    last_hop.append(r[1] - t)
    totals.append(r[1] - w[0])
if not totals:
    sys.exit("legs.sh: no complete request in the trace")
med = lambda xs: statistics.median(xs)
print(f"# {len(totals)} traced requests; medians in µs (traced: every syscall costs more)")
print(f"{'leg':34} {'wake-up':>8} {'own time':>9}")
for i, (role, what) in enumerate(chain):
    print(f"{what:34} {med(legs[i][0]):8.1f} {med(legs[i][1]):9.1f}")
print(f"{'load client, response':34} {med(last_hop):8.1f}")
print(f"{'request, client write to read':34} {med(totals):8.1f}")
