package mcpfront

import "time"

// Test hooks for the tools/list fast path (listfast.go).

// ListsSpliced is how many tools/list answers had their tools array
// written directly into the HTTP response.
func (s *Service) ListsSpliced() int64 { return s.lists.spliced.Load() }

// SetListFastPath turns the fast path on (the default) or off, so that
// tests can compare its answers with the SDK's own.
func (s *Service) SetListFastPath(on bool) { s.lists.off.Store(!on) }

// Test hooks for the tools/call fast path (directcall.go).

// DirectCallsServed is how many tools/call requests the fast path took.
func (s *Service) DirectCallsServed() int64 { return s.direct.served.Load() }

// SetDirectCalls turns the tools/call fast path on (the default) or off.
func (s *Service) SetDirectCalls(on bool) { s.direct.off.Store(!on) }

// DirectSessionKnown reports whether the fast path knows session id.
func (s *Service) DirectSessionKnown(id string) bool { return s.direct.session(id) != nil }

// SetDirectKeepAlive sets how long a session may be served only by the
// fast path before one call goes to the SDK (to keep its idle timer fresh).
func (s *Service) SetDirectKeepAlive(d time.Duration) { s.direct.keepAlive.Store(int64(d)) }
