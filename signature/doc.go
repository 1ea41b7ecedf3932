// Package signature verifies the signatures of incoming provider webhook
// deliveries, and signs deliveries for local testing.
//
// A [Scheme] is built from a catalog [Config] by [New], through one explicit
// registry of schemes (stripe, github, shopify, slack, standard-webhooks,
// svix, hmac). webhook-ingest calls [Verifier.Verify] on the raw request
// body before it parses anything; `toolbus webhooks send` calls
// [Signer.Sign] to produce deliveries that verify.
//
// Every scheme compares signatures in constant time, tries every configured
// secret (so that secrets can be rotated without downtime), checks the
// timestamp in both directions (stale and future) when the scheme signs one,
// and reads the event id and type only from a delivery whose signature
// verified.
//
// What this package must not do: it does no I/O, starts no goroutines, keeps
// no replay cache (deduplication by [Delivery.ID] is the bus's job) and
// never puts a secret or an expected signature into an error, a String or a
// log value. Its errors wrap a small set of sentinels ([ErrMissingSignature],
// [ErrSignatureMismatch], ...) with detail meant for logs only: the HTTP
// layer must answer every verification error with a bare 401 and no body
// detail, so that a caller learns nothing about why a delivery was refused.
package signature
