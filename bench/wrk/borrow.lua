-- Borrow/return under contention: every thread is one member on one connection
-- (wrk -tN -cN), borrowing one of a few books with fewer copies than members, then
-- returning it. wrk ... -- <first book id> <books> <token 1> ... <token N>
local threads = {}
local next_token = 3

setup = function(thread)
  table.insert(threads, thread)
  thread:set("index", #threads)
end

init = function(args)
  token = args[next_token + index - 1]
  first_book = tonumber(args[1])
  books = tonumber(args[2])
  headers = {["Authorization"] = "Bearer " .. token}
  math.randomseed(os.time() + index)
  loan = nil
  borrowed, returned, refused, server_errors, other = 0, 0, 0, 0, 0
end

request = function()
  if loan then
    return wrk.format("POST", "/books/loans/" .. loan .. "/return", headers)
  end
  local book = first_book + math.random(0, books - 1)
  return wrk.format("POST", "/books/" .. book .. "/loans", headers)
end

response = function(status, response_headers, body)
  if status >= 500 then
    server_errors = server_errors + 1
  elseif loan then
    if status == 200 then returned = returned + 1 else other = other + 1 end
    loan = nil
  elseif status == 201 then
    borrowed = borrowed + 1
    loan = body:match('"id":%s*(%d+)')
  elseif status == 409 then
    refused = refused + 1
  else
    other = other + 1
  end
end

scenario_extra = function()
  local sums = {borrowed = 0, returned = 0, refused = 0, server_errors = 0,
                other = 0, open = 0}
  for _, thread in ipairs(threads) do
    for key, _ in pairs(sums) do
      if key ~= "open" then sums[key] = sums[key] + thread:get(key) end
    end
    if thread:get("loan") then sums.open = sums.open + 1 end
  end
  return string.format(
    '{"borrowed": %d, "returned": %d, "refused": %d, "server_errors": %d, ' ..
    '"other": %d, "open": %d}', sums.borrowed, sums.returned, sums.refused,
    sums.server_errors, sums.other, sums.open)
end
