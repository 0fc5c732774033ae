-- GET one path, with an optional bearer token: wrk ... -- <path> [token]
init = function(args)
  local headers = {}
  if args[2] then headers["Authorization"] = "Bearer " .. args[2] end
  req = wrk.format("GET", args[1], headers)
end
request = function() return req end
