-- wrk script: POST one JSON body with a bearer token picked at random per request.
-- usage: wrk ... -s bench/post.lua http://HOST:PORT/api/v1/messages -- TOKENS_FILE BODY_FILE
--   TOKENS_FILE holds one token a line; BODY_FILE the JSON body sent with every request.

local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("thread_no", counter)
end

function init(args)
   local tokens, body_path = args[1], args[2]
   assert(tokens and body_path, "post.lua: pass the tokens file and the body file after --")
   local file = assert(io.open(body_path, "rb"), "post.lua: cannot read " .. body_path)
   local body = file:read("*a")
   file:close()
   requests = {}
   for token in io.lines(tokens) do
      if token ~= "" then
         local headers = {["Authorization"] = "Bearer " .. token,
                          ["Content-Type"] = "application/json"}
         requests[#requests + 1] = wrk.format("POST", nil, headers, body)
      end
   end
   assert(#requests > 0, "post.lua: no tokens in " .. tokens)
   math.randomseed(os.time() * 1000 + (thread_no or 0))
end

function request()
   return requests[math.random(#requests)]
end
