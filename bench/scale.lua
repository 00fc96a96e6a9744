-- wrk script of the scale benchmark: postbacks with random click ids and random transaction
-- ids (the keys real traffic brings, which land all over the indexes), and one request in ten
-- a click with a random external id; done() prints the figures as one JSON line.
--   wrk -t1 -c50 -d10s -s bench/scale.lua http://127.0.0.1:PORT -- SEED [clicks|noclicks|onlyclicks]

local threads = {}
local counter = 0
local mode = "clicks"  -- one request in ten a click; "noclicks": none; "onlyclicks": all

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

function init(args)
  local seed = tonumber(args[1] or "1") or 1
  math.randomseed(seed * 7919 + (thread_number or 0))
  mode = args[2] or "clicks"
end

local function token()
  return string.format("%08x%08x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
end

function request()
  counter = counter + 1
  if mode == "onlyclicks" or (mode == "clicks" and counter % 10 == 0) then
    return wrk.format("GET", "/click/bench?ref_id=e" .. token())
  end
  local path = string.format(
    "/postback?clickid=r%s&txid=t%s&type=Deposit&status=approved&sum=50", token(), token()
  )
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %.0f, "p90_us": %.0f, '
      .. '"p99_us": %.0f, "max_us": %.0f, "mean_us": %.1f, "connect_errors": %d, '
      .. '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write,
    e.status, e.timeout
  ))
end
