// One autocannon run for bench/run.py: reads a JSON spec on stdin, prints one JSON result line.
// spec: {url, connections, duration, amount?, headers, bodies: [string, …]}: with several bodies,
// each request takes the next one (e.g. one terminateSession per existing session).
import autocannon from "autocannon";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const spec = JSON.parse(Buffer.concat(chunks).toString("utf8"));

let next = 0;
const bodies = spec.bodies;
const options = {
  url: spec.url,
  connections: spec.connections,
  duration: spec.duration,
  method: "POST",
  headers: { "content-type": "application/json", ...(spec.headers || {}) },
  timeout: 30,
};
if (spec.amount) options.amount = spec.amount;
if (bodies.length === 1) {
  options.body = bodies[0];
} else {
  options.requests = [{ setupRequest: (req) => ({ ...req, body: bodies[next++ % bodies.length] }) }];
}

const result = await autocannon(options);
const l = result.latency;
process.stdout.write(JSON.stringify({
  requests: result.requests.total,
  duration_s: result.duration,
  rps: result.requests.total / result.duration,
  latency_ms: { p50: l.p50, p90: l.p90, p99: l.p99, max: l.max, mean: l.average },
  non2xx: result.non2xx,
  errors: result.errors,
  timeouts: result.timeouts,
  bytes_per_response: result.requests.total ? result.throughput.total / result.requests.total : 0,
}) + "\n");
