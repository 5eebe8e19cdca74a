-- Create+approve cycles: every created id is queued and approved by the
-- next request a connection of this thread sends. A cycle is two requests.
local create_body = '{"title":"Raise the expense approval limit","description":"Finance asked for 5000 without approval","proposed_action":{"type":"policy_update","changes":{"max_amount_without_approval":5000,"approval_chain":["manager","finance","cfo"]}},"expires_in":"24h"}'
local approve_body = '{"reviewer":"bench"}'
local ids = {}
local head, tail = 1, 0
approved, failed = 0, 0

function request()
  if head <= tail then
    local id = ids[head]
    ids[head] = nil
    head = head + 1
    return wrk.format("POST", "/v1/requests/" .. id .. "/approve",
      {["Content-Type"] = "application/json"}, approve_body)
  end
  return wrk.format("POST", "/v1/requests", {["Content-Type"] = "application/json"}, create_body)
end

function response(status, headers, body)
  if status == 201 then
    local id = string.match(body, '"id":"([^"]+)"')
    if id then
      tail = tail + 1
      ids[tail] = id
    end
  elseif status == 200 then
    approved = approved + 1
  else
    failed = failed + 1
  end
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local a, f = 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("approved")
    f = f + t:get("failed")
  end
  io.write(string.format("CYCLES approved=%d failed=%d cycles_per_sec=%.0f\n",
    a, f, a / (summary.duration / 1e6)))
end
