-- Shared by the bench/wrk scripts: writes wrk's summary as one JSON line to $BENCH_OUT.
local M = {}

function M.done(summary, latency, extra)
  local e = summary.errors
  local line = string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,' ..
    '"timeout_errors":%d,"non2xx":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f%s}',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    extra or "")
  local path = os.getenv("BENCH_OUT")
  if path and path ~= "" then
    local f = assert(io.open(path, "w"))
    f:write(line, "\n")
    f:close()
  else
    io.write(line, "\n")
  end
end

return M
