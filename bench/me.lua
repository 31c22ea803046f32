-- wrk script: GET the URL with a bearer token picked at random per request.
-- usage: wrk ... -s bench/me.lua http://HOST:PORT/api/v1/me -- TOKENS_FILE   (one token a line)

local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("thread_no", counter)
end

function init(args)
   local path = args[1]
   assert(path, "me.lua: pass the tokens file after --")
   requests = {}
   for token in io.lines(path) do
      if token ~= "" then
         requests[#requests + 1] = wrk.format(nil, nil, {["Authorization"] = "Bearer " .. token})
      end
   end
   assert(#requests > 0, "me.lua: no tokens in " .. path)
   math.randomseed(os.time() * 1000 + (thread_no or 0))
end

function request()
   return requests[math.random(#requests)]
end
