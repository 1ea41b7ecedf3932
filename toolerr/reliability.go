package toolerr

import (
	"fmt"
	"time"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// Codes of failures decided by Toolbus's own reliability machinery rather
// than by an upstream answer.
const (
	// CodeQuotaExhausted: the upstream's shared rate limit (catalog
	// rate_limit) has no request left within the call's deadline.
	CodeQuotaExhausted = "quota_exhausted"
	// CodeUpstreamPaused: a replica received 429 or Retry-After and every
	// replica pauses the upstream for that long.
	CodeUpstreamPaused = "upstream_paused"
	// CodeCircuitOpen: the upstream failed repeatedly and calls fail fast
	// for a cool-down.
	CodeCircuitOpen = "circuit_open"
	// CodeRetriesExhausted marks dead letters of calls whose every attempt
	// failed; the caller got the last attempt's error.
	CodeRetriesExhausted = "retries_exhausted"
)

// QuotaExhausted reports that Toolbus's shared rate limit for the upstream
// has no room for the call before its deadline. limit describes the
// policy ("20 requests per 1s").
func QuotaExhausted(tool, upstream, limit string, retryAfter time.Duration) *ToolError {
	return &ToolError{
		Class:      toolbusv1.ErrorClass_ERROR_CLASS_RATE_LIMITED,
		Code:       CodeQuotaExhausted,
		Message:    fmt.Sprintf("rate limited by %s: the shared quota of %s is used up (%s, not sent); retry after %s", upstream, limit, tool, FormatDuration(max(retryAfter, time.Millisecond))),
		Retryable:  true,
		RetryAfter: duration(retryAfter),
	}
}

// UpstreamPaused reports that every replica holds calls to the upstream
// because it answered 429 or Retry-After, longer than the call could wait.
func UpstreamPaused(tool, upstream string, retryAfter time.Duration) *ToolError {
	return &ToolError{
		Class:      toolbusv1.ErrorClass_ERROR_CLASS_RATE_LIMITED,
		Code:       CodeUpstreamPaused,
		Message:    fmt.Sprintf("rate limited by %s: it asked Toolbus to slow down and calls are paused (%s, not sent); retry after %s", upstream, tool, FormatDuration(max(retryAfter, time.Millisecond))),
		Retryable:  true,
		RetryAfter: duration(retryAfter),
	}
}

// CircuitOpen reports a call refused without contacting the upstream
// because it failed repeatedly; retryAfter is the rest of the cool-down.
func CircuitOpen(tool, upstream string, failures int, retryAfter time.Duration) *ToolError {
	return &ToolError{
		Class:      toolbusv1.ErrorClass_ERROR_CLASS_CIRCUIT_OPEN,
		Code:       CodeCircuitOpen,
		Message:    fmt.Sprintf("upstream %s is failing (%d failures in a row), so Toolbus stopped calling it for a while (%s, not sent); retry after %s", upstream, failures, tool, FormatDuration(max(retryAfter, time.Millisecond))),
		Retryable:  true,
		RetryAfter: duration(retryAfter),
	}
}
