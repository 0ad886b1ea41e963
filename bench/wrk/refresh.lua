-- Refresh-token rotation: every request presents a refresh token that has never been presented
-- before. Each connection starts from tokens of a pool made by real code flows (BENCH_POOL, one
-- token a line; this run uses lines BENCH_POOL_FROM .. BENCH_POOL_FROM + BENCH_POOL_COUNT - 1,
-- dealt to the threads in turn), and every 200 answer's new refresh token goes back into the
-- thread's queue: the chain a client follows. A token lost with a dropped connection is never
-- sent again, so a reuse-detection error (400 invalid_grant) can only come from the server.
-- BENCH_AUTH: the client's Authorization header. Extra summary fields: "drawn" (pool tokens
-- loaded), "rotated" (new tokens received), "empty" (requests sent with the queue empty: a bug
-- in the sizing, sent as an invalid token so it shows as a non-2xx). Give each thread a few
-- more pool tokens than connections: wrk calls request() once before the run to check it, and
-- the token that call draws is never sent.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local summary = require("summary")

local threads = {}
local counter = 0

function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local queue, head, tail = {}, 1, 0
drawn, rotated, empty = 0, 0, 0 -- globals: done() reads them with thread:get

function init(args)
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local from = tonumber(os.getenv("BENCH_POOL_FROM") or "1")
  local count = tonumber(os.getenv("BENCH_POOL_COUNT") or "1000000")
  local n = 0
  for line in io.lines(os.getenv("BENCH_POOL")) do
    n = n + 1
    if n >= from and n < from + count and (n - from) % nthreads == index and line ~= "" then
      tail = tail + 1
      queue[tail] = line
      drawn = drawn + 1
    end
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
end

function request()
  local token
  if head <= tail then
    token = queue[head]
    queue[head] = nil
    head = head + 1
  else
    empty = empty + 1
    token = "queue-was-empty"
  end
  return wrk.format(nil, nil, nil, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  if status == 200 then
    local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if token then
      tail = tail + 1
      queue[tail] = token
      rotated = rotated + 1
    end
  end
end

function done(s, latency, requests)
  local d, r, e = 0, 0, 0
  for _, t in ipairs(threads) do
    d = d + (t:get("drawn") or 0)
    r = r + (t:get("rotated") or 0)
    e = e + (t:get("empty") or 0)
  end
  summary.done(s, latency, string.format(',"drawn":%d,"rotated":%d,"empty":%d', d, r, e))
end
