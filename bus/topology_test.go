package bus_test

import (
	"testing"
	"time"

	"github.com/toolbus/toolbus/bus"
)

// The CALLS dedup window must outlast a publish's own retries (the
// caller's publish timeout, 2 s by default), and stay short: JetStream
// keeps every call id of the window in memory.
func TestCallsDuplicateWindow(t *testing.T) {
	topo := bus.DefaultTopology()
	if got := topo.CallsStream().Duplicates; got != bus.DefaultCallDuplicateWindow {
		t.Errorf("CALLS dedup window %v, want %v", got, bus.DefaultCallDuplicateWindow)
	}
	if bus.DefaultCallDuplicateWindow <= 2*time.Second || bus.DefaultCallDuplicateWindow > time.Minute {
		t.Errorf("DefaultCallDuplicateWindow %v: want more than the 2 s publish timeout and at most a minute", bus.DefaultCallDuplicateWindow)
	}
	topo.CallDuplicateWindow = 0
	if got := topo.CallsStream().Duplicates; got != bus.DefaultCallDuplicateWindow {
		t.Errorf("zero CallDuplicateWindow gave %v, want the default", got)
	}
	topo.CallDuplicateWindow = 30 * time.Second
	if got := topo.CallsStream().Duplicates; got != 30*time.Second {
		t.Errorf("CallDuplicateWindow 30s gave %v", got)
	}
	// Dead letters keep their own, longer window.
	if got := topo.DeadLettersStream().Duplicates; got != 2*time.Minute {
		t.Errorf("DEADLETTERS dedup window %v, want 2m", got)
	}
}
