-- wrk script for the benchmark: MCP `tools/call` over Streamable HTTP, or the direct REST call.
--
--   wrk -t2 -c32 -d10s -s bench/mcp_call.lua http://127.0.0.1:P/mcp -- MODE TOOL MARKER [TOKENS_FILE]
--
-- MODE    "mcp" (POST a stateless JSON-RPC tools/call, protocol 2025-11-25 headers) or "rest" (GET the
--         backend path directly: the floor)
-- TOOL    "get_pet" (the pet id varies per request) or "list_catalog" (the ~50 KB array)
-- MARKER  text a complete catalog answer contains (its last SKU, quoted)
-- TOKENS_FILE  optional: one bearer token a line, rotated per request
--
-- Every answer is checked in response(): status 200, the expected content, and no "isError": true. A
-- pet answer must echo a pet id this thread asked for (in both "id" and "pet-N"). done() prints one
-- line `BENCH_JSON {...}` with the counts and latency percentiles (microseconds) for bench/run.py.

local RING = 64           -- distinct requests prepared per thread (cheap: no formatting per request)
local threads = {}

failures = 0              -- per thread (each wrk thread has its own Lua state); summed in done()
first_failure = ""

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

local mode, tool, marker
local ring = {}
local next_request = 0
local low_id, high_id

local function read_tokens(path)
  local tokens = {}
  if path == nil or path == "" then return tokens end
  for line in io.lines(path) do
    if line ~= "" then table.insert(tokens, line) end
  end
  return tokens
end

function init(args)
  mode, tool, marker = args[1], args[2], args[3]
  local tokens = read_tokens(args[4])
  low_id = thread_index * RING + 1
  high_id = low_id + RING - 1
  for i = 1, RING do
    local id = low_id + i - 1
    if mode == "rest" then
      local path = tool == "get_pet" and ("/pets/" .. id) or "/catalog"
      ring[i] = wrk.format("GET", path, {})
    else
      local headers = {
        ["Content-Type"] = "application/json",
        ["Accept"] = "application/json, text/event-stream",
        ["MCP-Protocol-Version"] = "2025-11-25",
      }
      if #tokens > 0 then headers["Authorization"] = "Bearer " .. tokens[(i - 1) % #tokens + 1] end
      local arguments = tool == "get_pet" and ('{"id":' .. id .. '}') or "{}"
      local body = '{"jsonrpc":"2.0","id":"bench","method":"tools/call","params":{"name":"' .. tool
        .. '","arguments":' .. arguments .. '}}'
      ring[i] = wrk.format("POST", wrk.path, headers, body)
    end
  end
end

function request()
  next_request = next_request % RING + 1
  return ring[next_request]
end

local function pet_ok(body)
  local id = string.match(body, '"pet%-(%d+)"')
  if id == nil then return false end
  local n = tonumber(id)
  return n >= low_id and n <= high_id and string.find(body, '"id"%s*:%s*' .. id .. '[,}%s]') ~= nil
end

local function answer_ok(status, body)
  if status ~= 200 or body == nil then return false end
  if mode == "mcp" and (string.find(body, '"isError":true', 1, true) or string.find(body, '"isError": true', 1, true)) then
    return false
  end
  if tool == "get_pet" then return pet_ok(body) end
  return string.find(body, marker, 1, true) ~= nil
end

function response(status, headers, body)
  if not answer_ok(status, body) then
    failures = failures + 1
    if first_failure == "" then
      first_failure = "status " .. status .. ": " .. string.sub(body or "", 1, 300)
    end
  end
end

local function json_string(s)
  return '"' .. string.gsub(s, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end) .. '"'
end

function done(summary, latency, requests)
  local failed, sample = 0, ""
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("failures")
    if sample == "" then sample = thread:get("first_failure") end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"check_failures":%d,"connect_errors":%d,'
      .. '"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,"sample_failure":%s}\n',
    summary.requests, summary.duration, summary.bytes, failed, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    json_string(sample)))
end
