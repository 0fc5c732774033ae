-- Appended to every scenario: one JSON line that bench/run.py reads.
-- wrk counts a response with status >= 400 in errors.status.
done = function(summary, latency, requests)
  local e = summary.errors
  local extra = "{}"
  if scenario_extra then extra = scenario_extra() end
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"non_2xx": %d, "socket_errors": %d, "extra": %s}\n',
    summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout,
    extra))
end
