-- wrk script for `make bench` (bench/run.py runs it; see docs/performance.md).
--
--   wrk ... -s bench/load.lua http://127.0.0.1:PORT -- heartbeat TOKENS_FILE
--   wrk ... -s bench/load.lua http://127.0.0.1:PORT -- healthz
--
-- heartbeat: POST /api/v1/device/heartbeat as the fleet, one kiosk token after another (each wrk thread takes
-- every n-th token, so together they go round the whole fleet), with the body a real kiosk sends: all eight
-- components, error codes and five metrics. Every 20th kiosk reports a receipt printer low on paper (a failing
-- component and an error code), the others are healthy; metrics change from beat to beat.
-- healthz: GET /healthz, the same server's trivial endpoint, for the baseline.
--
-- Every response's status is counted; done() prints one line `BENCH_RESULT {json}` that bench/run.py reads.

local threads = {}
local thread_count = 0

function setup(thread)
   thread_count = thread_count + 1
   thread:set("thread_id", thread_count)
   table.insert(threads, thread)
end

local COMPONENTS_OK = '"card_reader":"ok","qr_scanner":"ok","cash_module":"ok","touchscreen":"ok",'
   .. '"mainboard":"ok","network":"ok","power":"ok"'

function init(args)
   mode = args[1] or "heartbeat"
   statuses = {}
   sent = 0
   if mode == "healthz" then
      healthz_request = wrk.format("GET", "/healthz")
      return
   end
   tokens = {}
   for line in io.lines(args[2]) do
      if #line > 0 then
         tokens[#tokens + 1] = line
      end
   end
   -- thread_count is only known in the main state; threads are started after all setup() calls, so the number
   -- of threads is passed as the third argument instead.
   stride = tonumber(args[3] or "1")
   -- args[4]: where in the token list to start (the warm-up goes round the whole fleet over several runs).
   index = (thread_id + tonumber(args[4] or "0") - 1) % #tokens + 1
end

local function heartbeat_body(kiosk_number)
   sent = sent + 1
   local printer, error_codes, paper
   if kiosk_number % 20 == 0 then
      printer, error_codes, paper = "degraded", '"E-PRN-002"', 6
   else
      printer, error_codes, paper = "ok", "", 30 + (kiosk_number + sent) % 70
   end
   return string.format(
      '{"sent_at":"%s","software_version":"3.2.1","components":{%s,"receipt_printer":"%s"},'
         .. '"error_codes":[%s],"metrics":{"paper_pct":%d,"cash_box_pct":%d,"cpu_temp_c":%.1f,'
         .. '"disk_free_mb":%d,"net_latency_ms":%d}}',
      os.date("!%Y-%m-%dT%H:%M:%S+00:00"), COMPONENTS_OK, printer, error_codes, paper,
      (kiosk_number * 7 + sent) % 80, 38 + (sent % 50) / 10, 20000 + kiosk_number % 1000, 20 + sent % 60
   )
end

function request()
   if mode == "healthz" then
      return healthz_request
   end
   local i = index
   index = index + stride
   if index > #tokens then
      index = index - #tokens
   end
   return wrk.format("POST", "/api/v1/device/heartbeat", {
      ["Authorization"] = "Device " .. tokens[i],
      ["Content-Type"] = "application/json",
   }, heartbeat_body(i))
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local codes = {}
   for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("statuses")) do
         codes[status] = (codes[status] or 0) + n
      end
   end
   local parts = {}
   for status, n in pairs(codes) do
      parts[#parts + 1] = string.format('"%d":%d', status, n)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
         .. '"max_us":%d,"mean_us":%.1f,"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},'
         .. '"statuses":{%s}}\n',
      summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.timeout,
      table.concat(parts, ",")
   ))
end
