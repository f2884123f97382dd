-- Fleet-wide GCRA, one atomic step. Times in microseconds, from the Redis
-- server clock so every proxy agrees on "now".
-- KEYS[1]: the client's key.  ARGV[1]: emission interval (us per request).
-- ARGV[2]: burst capacity (burst * interval).
-- Returns {1, 0} when allowed, {0, retry_after_ms} when denied.
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local new_tat = tat + interval
local over = new_tat - now - capacity
if over > 0 then
  return {0, math.ceil(over / 1000)}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0}
