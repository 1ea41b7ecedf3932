// Package crm provides a small, realistic REST "CRM" used as the demo and
// test upstream for Toolbus: customers and orders in memory, several
// pagination styles, idempotency keys, API-key auth, rate limiting,
// Stripe-style form bodies, and endpoints built for tests and benchmarks
// (echo, lookup, flaky, CSV, large exports).
//
// Tests and benchmarks script it through fault rules (errors, delays, hangs,
// connection resets, slow or malformed bodies) and read what it saw through
// counters, both as Go methods on [Server] and over HTTP under /_faults and
// /_stats. Its OpenAPI 3.1 document is embedded and served at /openapi.yaml.
//
// It is a test fixture, not a product: it keeps everything in memory, must
// not persist anything and must not call other services.
package crm
