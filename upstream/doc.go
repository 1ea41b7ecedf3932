// Package upstream provides the HTTP client every Toolbus worker (REST now,
// GraphQL later) uses to call an upstream API declared in the catalog: one
// [Client] per upstream, sharing one tuned connection pool, with a fixed
// redirect policy, the catalog's headers, a response size limit, a typed
// [Response], and [Classify], which turns transport failures into tool
// errors a model can act on.
//
// # The round-tripper chain
//
// A request passes through these layers, outermost first. The order is
// fixed here, not by callers, so that every worker behaves the same:
//
//  1. Tracing (slot [Layers.Tracing], filled by [Tracing]): marks the call
//     so that layer 3 opens one HTTP client span per attempt (tracing.go).
//  2. Retry (slot [Layers.Retry], filled from [Options.Reliability]):
//     full-jitter back-off inside the call's deadline, honouring
//     Retry-After and RateLimit headers (retry.go); it replays only bodies
//     that have GetBody and retries a mutating request only with the
//     upstream's idempotency header or when it never left the machine.
//  3. Attempt counting: counts what reaches the upstream per call, so
//     [Response.Attempts] is right once Retry exists; redirects are not
//     counted as attempts.
//  4. Rate limit, pause and circuit breaker (slot [Layers.Quota], filled
//     from [Options.Reliability]): shared across replicas through NATS KV
//     ([SharedState]; quota.go, circuit.go, shared.go).
//  5. Auth (slot [Layers.Auth], later): bearer, OAuth2, token exchange.
//  6. Headers: the catalog's upstream headers, which win over anything a
//     tool argument set (an argument can never replace a credential).
//  7. Size limit: bodies are cut off after MaxResponseBytes with
//     [ErrResponseTooLarge], never silently truncated.
//  8. Base transport: a tuned [http.Transport] per upstream, whose dialer
//     refuses link-local addresses (cloud metadata services).
//
// Redirects are followed by the [http.Client] above the chain, so every
// hop passes through all the layers; at most 5 are followed and only to
// the upstream's own scheme, host and port.
//
// # What it must not do
//
// It must not build request URLs from tool arguments (the worker does,
// under its own tests), must not log, and must never put a secret into an
// error: catalog header values are revealed only on the wire, and URLs in
// errors have their query replaced, since an API key may travel there.
package upstream
