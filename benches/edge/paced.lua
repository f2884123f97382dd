-- wrk script: requests at a fixed total rate (PACED_RPS, requests per second over all
-- connections) instead of back to back, so servers of different speed are compared at the same
-- load. Each connection, when ready for its next request, takes the next slot of one schedule
-- (slots 1/PACED_RPS apart) and waits for it (wrk's `delay`, whole milliseconds); a server that
-- falls behind gets the missed slots at once, as far as the connections allow. Latency is
-- wrk's (from the request's write), reported by the peers' wrk-stats.lua (WRK_STATS_LUA).
-- usage: PACED_RPS=2000 WRK_STATS_LUA=../shared/peers/lib/wrk-stats.lua \
--          wrk -t1 -c50 -d5s -s benches/edge/paced.lua URL
dofile(assert(os.getenv("WRK_STATS_LUA"), "set WRK_STATS_LUA to the peers' lib/wrk-stats.lua"))
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } paced_timespec;
  int clock_gettime(int clock, paced_timespec *ts);
]]
local ts = ffi.new("paced_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local interval = 1000 / assert(tonumber(os.getenv("PACED_RPS")), "set PACED_RPS")
local next_slot = nil
function delay()
  local now = now_ms()
  -- A backlog of at most 100 ms of slots: past that the server is simply overloaded.
  next_slot = math.max((next_slot or now) + interval, now - 100)
  return math.max(0, math.floor(next_slot - now))
end
