package mcpfront

import (
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// DefaultMaxCallsPerCaller bounds the calls one caller has in flight at
// once unless Options.MaxCallsPerCaller says otherwise. A model runs a
// handful of tools in parallel; a caller far above this is a runaway loop
// or a leaked credential, and must not take every worker slot from the
// others.
const DefaultMaxCallsPerCaller = 64

// callerRetryAfter is the hint given to a caller over its limit: its own
// calls finish within a tool timeout, usually much sooner.
const callerRetryAfter = time.Second

// callerLimiter counts each caller's calls in flight. It is a counter per
// key, not a queue: a call over the limit is answered at once with a tool
// error, so a flooding caller never holds memory or goroutines waiting.
type callerLimiter struct {
	max      int
	mu       sync.Mutex
	inflight map[string]int
}

// newCallerLimiter returns nil (no limit) for max < 0.
func newCallerLimiter(max int) *callerLimiter {
	if max == 0 {
		max = DefaultMaxCallsPerCaller
	}
	if max < 0 {
		return nil
	}
	return &callerLimiter{max: max, inflight: map[string]int{}}
}

// acquire takes a slot for key; release must be called once when ok.
// An empty key (a caller Toolbus cannot tell apart) is not limited.
func (l *callerLimiter) acquire(key string) (release func(), ok bool) {
	if l == nil || key == "" {
		return func() {}, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight[key] >= l.max {
		return nil, false
	}
	l.inflight[key]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.inflight[key]--; l.inflight[key] <= 0 {
			delete(l.inflight, key)
		}
	}, true
}

// limitKey names the caller of req: the authenticated subject (per tenant),
// else the MCP session. Unauthenticated gRPC and stateless calls have
// neither and are not limited per caller.
func limitKey(req callRequest) string {
	switch {
	case req.caller != nil && req.caller.Subject != "":
		return "sub:" + req.caller.Tenant + "/" + req.caller.Subject
	case req.sessionID != "":
		return "session:" + req.sessionID
	}
	return ""
}

func tooManyCalls(t *frontTool, max int) *toolbusv1.ToolResult {
	return &toolbusv1.ToolResult{Error: &toolbusv1.ToolError{
		Class:      toolbusv1.ErrorClass_ERROR_CLASS_RATE_LIMITED,
		Code:       "caller_concurrency_exceeded",
		Message:    fmt.Sprintf("tool %s was not called: this caller already has %d calls in progress, the most Toolbus runs at once for one caller; wait for some to finish, then retry", t.name, max),
		Retryable:  true,
		RetryAfter: durationpb.New(callerRetryAfter),
	}}
}
