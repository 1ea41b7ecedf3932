package main

import (
	"testing"

	"go.uber.org/goleak"
)

// Every service started by serve must be stopped by the time it returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
