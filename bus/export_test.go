package bus

import "time"

// SetDeclareAttemptTimeout shortens Declare's attempt bound for a test.
func SetDeclareAttemptTimeout(d time.Duration) (restore func()) {
	old := declareAttemptTimeout
	declareAttemptTimeout = d
	return func() { declareAttemptTimeout = old }
}
