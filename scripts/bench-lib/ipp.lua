-- wrk script for scripts/bench: POST one fixed IPP request body.
--
-- BENCH_BODY        path of the binary IPP request (made by ipp.py body)
-- BENCH_CHECK_EACH  if "1", also check every response's IPP status code
--                   (bytes 3-4 of the body must be 0x0000); costs wrk CPU,
--                   because wrk then hands every body to Lua.
--
-- At the end one machine-readable line starting with "BENCH_RESULT" is
-- printed for scripts/bench to parse.

local path = os.getenv("BENCH_BODY")
assert(path and path ~= "", "BENCH_BODY is not set")
local f = assert(io.open(path, "rb"))
local body = f:read("*a") -- Lua strings are binary-safe
f:close()
assert(#body > 8, "IPP request body is too short: " .. path)

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/ipp"

local check_each = os.getenv("BENCH_CHECK_EACH") == "1"
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   ipp_bad = 0
   ipp_checked = 0
end

if check_each then
   function response(status, headers, resp)
      ipp_checked = ipp_checked + 1
      if status ~= 200 or #resp < 8 or resp:byte(3) ~= 0 or resp:byte(4) ~= 0 then
         ipp_bad = ipp_bad + 1
      end
   end
end

function done(summary, latency, requests)
   local bad, checked = 0, 0
   for _, t in ipairs(threads) do
      bad = bad + (t:get("ipp_bad") or 0)
      checked = checked + (t:get("ipp_checked") or 0)
   end
   local secs = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      "BENCH_RESULT requests=%d duration_s=%.3f rps=%.1f bytes=%d " ..
      "p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
      "non2xx=%d connect_err=%d read_err=%d write_err=%d timeout_err=%d " ..
      "ipp_checked=%d ipp_bad=%d\n",
      summary.requests, secs, summary.requests / secs, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      e.status, e.connect, e.read, e.write, e.timeout,
      checked, bad))
end
