-- client_credentials across many tenants: each request goes to a tenant drawn at random from
-- BENCH_SPREAD, whose lines are "PATH AUTHORIZATION" (for example
-- "/t/scale-17/token Basic Y2xp…"), so tenant, client and key caches see a realistic mix.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local summary = require("summary")

local targets = {}

function init(args)
  for l in io.lines(os.getenv("BENCH_SPREAD")) do
    local path, auth = l:match("^(%S+) (.+)$")
    if path then
      targets[#targets + 1] = { path, auth }
    end
  end
  math.randomseed(os.time() + (id or 0))
end

local body = "grant_type=client_credentials&scope=reports.read"

function request()
  local t = targets[math.random(#targets)]
  return wrk.format("POST", t[1], { ["Authorization"] = t[2], ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end

function done(s, latency, requests)
  summary.done(s, latency)
end
