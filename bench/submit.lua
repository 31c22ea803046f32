-- wrk script: POST /api/v1/filings/{id}/submit, every request on a draft of its own.
-- usage: wrk -tN ... -s bench/submit.lua http://HOST:PORT -- PAIRS_FILE N
--   PAIRS_FILE holds "TOKEN DRAFT_ID" a line; thread k of N takes lines k, k+N, k+2N ... so no
--   draft is submitted twice. A thread that has used up its drafts sends GET /healthz instead,
--   counts it, and stops; done() reports the count ("submit.lua: K requests found no draft").

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("thread_no", counter)
   threads[#threads + 1] = thread
end

function init(args)
   local path, nthreads = args[1], tonumber(args[2])
   assert(path and nthreads, "submit.lua: pass the pairs file and the thread count after --")
   requests, next_request, exhausted = {}, 1, 0
   local line_no = 0
   for line in io.lines(path) do
      local token, id = line:match("^(%S+)%s+(%x+)$")
      if token then
         if line_no % nthreads == thread_no - 1 then
            local headers = {["Authorization"] = "Bearer " .. token}
            local path = "/api/v1/filings/" .. id .. "/submit"
            requests[#requests + 1] = wrk.format("POST", path, headers, "")
         end
         line_no = line_no + 1
      end
   end
   assert(#requests > 0, "submit.lua: no drafts for thread " .. thread_no .. " in " .. path)
   spare = wrk.format("GET", "/healthz", {}, nil)
end

function request()
   local r = requests[next_request]
   if r then
      next_request = next_request + 1
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
      io.write(string.format("submit.lua: %d requests found no draft\n", total))
   end
end
