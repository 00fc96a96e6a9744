-- wrk script of the benchmark: every request is a postback with a unique click id
-- (prefix, thread number, counter), and done() prints the figures as one JSON line.
--   wrk -t1 -c50 -d10s -s bench/postbacks.lua http://127.0.0.1:PORT -- PREFIX

local threads = {}
local counter = 0
local prefix = "wrk-"

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

function init(args)
  if args[1] ~= nil then
    prefix = args[1]
  end
end

function request()
  counter = counter + 1
  local path = string.format(
    "/postback?clickid=%s%d-%d&type=Deposit&status=approved&sum=50",
    prefix, thread_number, counter
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
