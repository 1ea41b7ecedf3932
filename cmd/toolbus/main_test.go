package main

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// Every service started by serve must be stopped by the time it returns.
// The toolbus binary the end-to-end tests build (toolbusBin) is removed
// afterwards, passed or failed: it is ~70 MB.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if buildPath != "" {
			_ = os.RemoveAll(filepath.Dir(buildPath))
		}
		os.Exit(code)
	}))
}
