-- One fixed request, repeated: method, body and headers from the environment, so wrk builds it
-- once (no Lua per request). BENCH_METHOD (GET), BENCH_BODY, BENCH_AUTH (an Authorization
-- value), BENCH_CTYPE (Content-Type of the body). wrk counts responses with status > 399 as
-- status errors; bench/run.sh checks each request's exact status once before the load.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local summary = require("summary")

wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = os.getenv("BENCH_CTYPE") or "application/x-www-form-urlencoded"
end
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

function done(s, latency, requests)
  summary.done(s, latency)
end
