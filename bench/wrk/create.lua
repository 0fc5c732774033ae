-- POST /books/ with a new, valid ISBN-13 (prefix 979, unused by the loaded data)
-- each time: wrk -t1 ... -- <staff token> <first number>
local function isbn(number)
  local body = string.format("979%09d", number)
  local total = 0
  for i = 1, 12 do
    local weight = (i % 2 == 0) and 3 or 1
    total = total + weight * tonumber(body:sub(i, i))
  end
  return body .. ((10 - total % 10) % 10)
end

init = function(args)
  headers = {["Authorization"] = "Bearer " .. args[1],
             ["Content-Type"] = "application/json"}
  counter = tonumber(args[2])
end

request = function()
  counter = counter + 1
  local body = string.format(
    '{"title": "Bench volume %d", "author": "Bench Author", "isbn": "%s", ' ..
    '"published_year": 2024, "copies_total": 3}', counter, isbn(counter))
  return wrk.format("POST", "/books/", headers, body)
end
