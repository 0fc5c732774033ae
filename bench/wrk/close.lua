-- Prepended to every scenario: each request on a new connection, for every server
-- alike. uWSGI's and gunicorn's sync workers would otherwise hold a kept-alive
-- connection to themselves while the other connections wait, and in production
-- nginx opens a fresh upstream connection per request.
local format = wrk.format
wrk.format = function(method, path, headers, body)
  headers = headers or {}
  headers["Connection"] = "close"
  return format(method, path, headers, body)
end
