-- DynamoDB JSON 1.0 requests for wrk, shared by put.lua, get.lua, query.lua and mix.lua.
--
--   wrk -t2 -c16 -d10s --latency -s hack/wrk/get.lua http://127.0.0.1:8000 -- TABLE ITEMS BYTES
--
-- TABLE (default tkbench) must exist and hold ITEMS (default 10000) preloaded items:
-- hack/wrk/prepare.py does that, with the key layout of tablekeeper.bench: item i has
-- pk = "pk%08d" % (i // 10) and sk = "sk%04d" % (i % 10). BYTES (default 200) sizes PutItem.
--
-- Every wrk thread has a Lua state of its own: setup() numbers the threads, and a put's key is
-- "<run>-<thread>-<counter>", so no two requests of a run write the same key.
-- The Authorization header has the SigV4 shape with a fixed, unverified signature: computing
-- a real one needs SHA-256, which wrk's LuaJIT lacks. Peers and `tablekeeper engine --auth none`
-- check the shape only.
-- done() prints the percentiles and one machine-readable line starting with "TKWRK ".

local op = TK_OP or "get"
local ITEMS_PER_PARTITION = 10
local table_name, items, item_bytes = "tkbench", 10000, 200
local counter = 0
local prefix, filler
local headers = {}
local threads = 0

function setup(thread) -- main Lua state, once per thread before it starts
  threads = threads + 1
  thread:set("tid", threads)
end

local function signed_headers(target)
  local amz_date = os.date("!%Y%m%dT%H%M%SZ")
  return {
    ["Content-Type"] = "application/x-amz-json-1.0",
    ["X-Amz-Target"] = "DynamoDB_20120810." .. target,
    ["X-Amz-Date"] = amz_date,
    ["Authorization"] = "AWS4-HMAC-SHA256 Credential=AKIDTKBENCH/" .. amz_date:sub(1, 8)
      .. "/us-east-1/dynamodb/aws4_request, "
      .. "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="
      .. string.rep("0", 64),
  }
end

function init(args) -- each thread's own Lua state
  table_name = args[1] or table_name
  items = tonumber(args[2] or items)
  item_bytes = tonumber(args[3] or item_bytes)
  local id = tid or 0
  math.randomseed(os.time() + 7919 * id)
  prefix = string.format("wrk%x-%d", os.time(), id)
  -- pk "<prefix>-<counter>" is about #prefix + 8 bytes; names pk, sk, data and sk0000
  filler = string.rep("x", math.max(1, item_bytes - (#prefix + 8) - 2 - 2 - 6 - 4))
  for _, target in ipairs({ "PutItem", "GetItem", "Query" }) do
    headers[target] = signed_headers(target)
  end
end

local function preloaded_key(i)
  return string.format("pk%08d", math.floor(i / ITEMS_PER_PARTITION)),
    string.format("sk%04d", i % ITEMS_PER_PARTITION)
end

local function put_item()
  counter = counter + 1
  local body = string.format(
    '{"TableName":"%s","Item":{"pk":{"S":"%s-%d"},"sk":{"S":"sk0000"},"data":{"S":"%s"}}}',
    table_name, prefix, counter, filler)
  return wrk.format("POST", "/", headers.PutItem, body)
end

local function get_item()
  local pk, sk = preloaded_key(math.random(0, items - 1))
  local body = string.format(
    '{"TableName":"%s","Key":{"pk":{"S":"%s"},"sk":{"S":"%s"}}}', table_name, pk, sk)
  return wrk.format("POST", "/", headers.GetItem, body)
end

local function query()
  local partitions = math.max(1, math.ceil(items / ITEMS_PER_PARTITION))
  local pk = preloaded_key(math.random(0, partitions - 1) * ITEMS_PER_PARTITION)
  local body = string.format(
    '{"TableName":"%s","KeyConditionExpression":"pk = :p",'
      .. '"ExpressionAttributeValues":{":p":{"S":"%s"}}}', table_name, pk)
  return wrk.format("POST", "/", headers.Query, body)
end

local builders = { put = put_item, get = get_item, query = query }

function request()
  if op == "mix" then
    if math.random() < 0.5 then return put_item() end
    return get_item()
  end
  return builders[op]()
end

function done(summary, latency, _)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  local failed = e.connect + e.read + e.write + e.timeout + e.status
  local ok = summary.requests - e.status
  local function ms(us) return us / 1000 end
  io.write(string.format("%s: %.0f ok/s, p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.1f ms, "
    .. "%d errors (%d non-2xx)\n", op, ok / seconds, ms(latency:percentile(50)),
    ms(latency:percentile(90)), ms(latency:percentile(99)), ms(latency.max), failed, e.status))
  io.write(string.format('TKWRK {"op":"%s","requests":%d,"ops_per_s":%.1f,"p50_ms":%.3f,'
    .. '"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"errors":%d,"non2xx":%d}\n',
    op, ok, ok / seconds, ms(latency:percentile(50)), ms(latency:percentile(90)),
    ms(latency:percentile(99)), ms(latency.max), failed, e.status))
end
