package mcpfront

// Test hooks for the tools/list fast path (listfast.go).

// ListsSpliced is how many tools/list answers had their tools array
// written directly into the HTTP response.
func (s *Service) ListsSpliced() int64 { return s.lists.spliced.Load() }

// SetListFastPath turns the fast path on (the default) or off, so that
// tests can compare its answers with the SDK's own.
func (s *Service) SetListFastPath(on bool) { s.lists.off.Store(!on) }
