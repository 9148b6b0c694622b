-- wrk script for benches/load.sh.
--
--   [LOAD_TOKENS=FILE] wrk ... -s benches/load.lua URL
--
-- Without LOAD_TOKENS every request is the same GET, which wrk formats once (its static fast
-- path). With a file of tokens, one a line, each thread pre-formats one request per token
-- (Authorization header) and cycles through them from a random start, so many distinct tokens
-- cost the load generator a table lookup per request. At the end it prints one line the
-- harness reads:
--   RESULT <requests> <errors> <p50 us> <p99 us> <p99.9 us>

local file = os.getenv("LOAD_TOKENS")

if file ~= nil and file ~= "" then
  local reqs = {}
  local n = 0
  local i = 0

  function init(args)
    for line in io.lines(file) do
      if line ~= "" then
        n = n + 1
        reqs[n] = wrk.format("GET", nil, { ["Authorization"] = line })
      end
    end
    math.randomseed(os.time() + (tonumber(tostring({}):sub(8), 16) or 0) % 100003)
    i = math.random(n) - 1
  end

  function request()
    i = i % n + 1
    return reqs[i]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, errors,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
