-- wrk script: POST WeChat Pay payment callbacks, built, encrypted and signed beforehand.
-- usage: wrk -tN ... -s bench/notify.lua http://HOST:PORT -- CALLBACKS_FILE N SERIAL MODE
--   CALLBACKS_FILE holds "TIMESTAMP<tab>NONCE<tab>SIGNATURE<tab>BODY" a line; thread k of N
--   takes lines k, k+N, k+2N ... SERIAL is the platform key's id (Wechatpay-Serial).
--   MODE "once": every callback is posted once (first deliveries, each crediting an order of
--   its own); a thread that has used up its callbacks sends GET /healthz instead, counts it,
--   and stops; done() reports the count ("notify.lua: K requests found no order").
--   MODE "cycle": each thread posts its callbacks round and round (repeated deliveries).

local PATH = "/api/v1/payments/wechat/notify"
local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("thread_no", counter)
   threads[#threads + 1] = thread
end

function init(args)
   local path, nthreads, serial = args[1], tonumber(args[2]), args[3]
   mode = args[4]
   assert(path and nthreads and serial and (mode == "once" or mode == "cycle"),
          "notify.lua: pass the callbacks file, the thread count, the serial and once|cycle")
   requests, next_request, exhausted = {}, 1, 0
   local line_no = 0
   for line in io.lines(path) do
      local stamp, nonce, signature, body = line:match("^(%d+)\t(%w+)\t(%S+)\t(.+)$")
      if stamp then
         if line_no % nthreads == thread_no - 1 then
            local headers = {
               ["Content-Type"] = "application/json",
               ["Wechatpay-Timestamp"] = stamp,
               ["Wechatpay-Nonce"] = nonce,
               ["Wechatpay-Signature"] = signature,
               ["Wechatpay-Serial"] = serial,
               ["Wechatpay-Signature-Type"] = "WECHATPAY2-SHA256-RSA2048",
            }
            requests[#requests + 1] = wrk.format("POST", PATH, headers, body)
         end
         line_no = line_no + 1
      end
   end
   assert(#requests > 0, "notify.lua: no callbacks for thread " .. thread_no .. " in " .. path)
   spare = wrk.format("GET", "/healthz", {}, nil)
end

function request()
   local r = requests[next_request]
   if r then
      next_request = next_request + 1
      if mode == "cycle" and next_request > #requests then
         next_request = 1
      end
      return r
   end
   exhausted = exhausted + 1
   return spare
end

function response(status, headers, body)
   if exhausted > 0 then
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local total = 0
   for _, thread in ipairs(threads) do
      total = total + (thread:get("exhausted") or 0)
   end
   if total > 0 then
      io.write(string.format("notify.lua: %d requests found no order\n", total))
   end
end
