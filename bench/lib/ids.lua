-- wrk -s bench/lib/ids.lua <url> -- <ids>: request i (from 0) goes to <the url's path>/<i % ids>.
local ids, n = 1, 0

function init(args)
  ids = tonumber(args[1]) or 1
end

function request()
  local path = wrk.path .. "/" .. (n % ids)
  n = n + 1
  return wrk.format(nil, path)
end
