-- wrk script for scripts/soak.sh: a mix of good requests, bad tokens and failing logins.
-- Every thread counts statuses; `done` prints them as one `STATUS <code> <count>` line each.
local token = os.getenv("SOAK_ACCESS")
local refresh = os.getenv("SOAK_REFRESH")
local user = os.getenv("SOAK_USER")
local password = os.getenv("SOAK_PASSWORD")
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  n = 0
  math.randomseed(os.time() * 1000 + id)
end

local bad_tokens = {
  "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhZG1pbiJ9.",
  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhZG1pbiIsInVzZWZvciI6ImFjY2VzcyJ9.AAAA",
  "not-a-token",
  "a.b.c.d.e",
}

local json = {["Content-Type"] = "application/json"}

request = function()
  n = n + 1
  local k = n % 20
  if k < 8 then
    return wrk.format("GET", "/api/v3/process", {["Authorization"] = "Bearer " .. token})
  elseif k < 10 then
    return wrk.format("GET", "/api/login/refresh", {["Authorization"] = "Bearer " .. refresh})
  elseif k < 14 then
    local bad = bad_tokens[(n % #bad_tokens) + 1]
    if k == 13 then bad = string.rep("A", 9000) end
    return wrk.format("GET", "/api/v3/process", {["Authorization"] = "Bearer " .. bad})
  elseif k == 14 then
    -- The real user, from its own (forwarded) address.
    local h = {["Content-Type"] = "application/json", ["X-Forwarded-For"] = "198.51.100.1"}
    return wrk.format("POST", "/api/login", h,
      '{"username":"' .. user .. '","password":"' .. password .. '"}')
  elseif k == 15 then
    return wrk.format("POST", "/api/login", json, '{"username":')
  else
    -- Failing logins: random accounts from random addresses (fills the throttle table).
    local ip = string.format("10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(1, 254))
    local h = {["Content-Type"] = "application/json", ["X-Forwarded-For"] = ip}
    local name = (k == 16) and user or ("user" .. math.random(1, 1000000))
    return wrk.format("POST", "/api/login", h,
      '{"username":"' .. name .. '","password":"guess' .. math.random(1, 1000000) .. '"}')
  end
end

response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for code, count in pairs(s) do
      total[code] = (total[code] or 0) + count
    end
  end
  for code, count in pairs(total) do
    io.write(string.format("STATUS %d %d\n", code, count))
  end
  io.write(string.format("LATENCY_P99_MS %.2f\n", latency:percentile(99) / 1000))
end
