-- GET /books/<id> for ids spread at random over the whole catalog: wrk ... -- <n>
init = function(args)
  books = tonumber(args[1])
  math.randomseed(os.time())
end
request = function()
  return wrk.format("GET", "/books/" .. math.random(1, books))
end
