package upstream

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/bus"
)

// SharedState is the reliability state every replica of every worker sees:
// rate-limit token buckets (bucket bus.BucketRateLimits, key = upstream),
// "paused until" times written on 429 (bucket bus.BucketUpstreamState, key
// pause.<upstream>) and circuit-breaker states (same bucket, key
// circuit.<upstream>). Pauses and circuits are watched, so the per-call
// check is an atomic load; token buckets are leased in batches with
// compare-and-set. All coordination is JetStream KV revisions: nothing here
// elects a leader or holds a lock.
//
// A nil *SharedState keeps the same state inside one process (tests,
// single-replica setups without a bus).
type SharedState struct {
	js    jetstream.JetStream
	rate  jetstream.KeyValue
	state jetstream.KeyValue

	mu  sync.Mutex
	ups map[string]*upState

	watcher jetstream.KeyWatcher
	stop    context.CancelFunc
	done    chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// upState is one upstream's watched state.
type upState struct {
	// pausedUntil is a Unix time in nanoseconds; 0 when never paused.
	pausedUntil atomic.Int64
	circuit     atomic.Pointer[circuitView]
}

func newUpState() *upState {
	s := &upState{}
	s.circuit.Store(&circuitView{})
	return s
}

// NewSharedState returns shared state on js without touching the bus:
// Start binds the buckets and starts watching. Until then (and when the
// bus cannot be reached at Start) state stays in this process.
func NewSharedState(js jetstream.JetStream) *SharedState {
	return &SharedState{js: js, ups: map[string]*upState{}}
}

// OpenSharedState is NewSharedState followed by Start.
func OpenSharedState(ctx context.Context, js jetstream.JetStream) (*SharedState, error) {
	s := NewSharedState(js)
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Start binds the KV buckets (bus.Topology.Ensure creates them) and
// watches pauses and circuits; it returns once the current values are
// known. Call it before the workers using the state start.
func (s *SharedState) Start(ctx context.Context) error {
	rate, err := s.js.KeyValue(ctx, bus.BucketRateLimits)
	if err != nil {
		return fmt.Errorf("shared state: bucket %s: %w", bus.BucketRateLimits, err)
	}
	state, err := s.js.KeyValue(ctx, bus.BucketUpstreamState)
	if err != nil {
		return fmt.Errorf("shared state: bucket %s: %w", bus.BucketUpstreamState, err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	w, err := state.WatchAll(wctx)
	if err != nil {
		cancel()
		return fmt.Errorf("shared state: watch %s: %w", bus.BucketUpstreamState, err)
	}
	initial, done := make(chan struct{}), make(chan struct{})
	go s.watch(w, initial, done)
	select {
	case <-initial:
	case <-ctx.Done():
		cancel()
		_ = w.Stop()
		<-done
		return fmt.Errorf("shared state: initial values: %w", ctx.Err())
	}
	s.watcher, s.stop, s.done = w, cancel, done
	s.rate, s.state = rate, state
	return nil
}

// Shutdown stops watching (lifecycle of `toolbus serve`).
func (s *SharedState) Shutdown(context.Context) error { return s.Close() }

// Close stops watching. Clients built on the state keep working with the
// last values they saw.
func (s *SharedState) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *SharedState) close() error {
	if s == nil || s.watcher == nil {
		return nil
	}
	s.stop()
	// Cancelling the watch context may already have closed the
	// subscription; a second unsubscribe error says nothing useful.
	_ = s.watcher.Stop()
	<-s.done
	return nil
}

func (s *SharedState) watch(w jetstream.KeyWatcher, initial, done chan struct{}) {
	defer close(done)
	first := true
	for e := range w.Updates() {
		if e == nil {
			if first {
				close(initial)
				first = false
			}
			continue
		}
		s.apply(e)
	}
	if first {
		close(initial)
	}
}

// apply records one watched entry: pause.<upstream> or circuit.<upstream>.
func (s *SharedState) apply(e jetstream.KeyValueEntry) {
	kind, name, ok := strings.Cut(e.Key(), ".")
	if !ok {
		return
	}
	st := s.upstream(name)
	deleted := e.Operation() != jetstream.KeyValuePut
	switch kind {
	case "pause":
		until := int64(0)
		if !deleted {
			until, _ = strconv.ParseInt(string(e.Value()), 10, 64)
		}
		st.pausedUntil.Store(until)
	case "circuit":
		v := &circuitView{}
		if !deleted {
			v = decodeCircuit(e.Value())
		}
		v.rev = e.Revision()
		for {
			cur := st.circuit.Load()
			if cur.rev >= v.rev || st.circuit.CompareAndSwap(cur, v) {
				break
			}
		}
	}
}

// upstream returns the state of one upstream, creating it on first use.
func (s *SharedState) upstream(name string) *upState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.ups[name]
	if st == nil {
		st = newUpState()
		s.ups[name] = st
	}
	return st
}

func pauseKey(upstream string) string   { return "pause." + upstream }
func circuitKey(upstream string) string { return "circuit." + upstream }

// publishPause records that upstream is paused until the given time, for
// every replica. Only a later time replaces the current one.
func (s *SharedState) publishPause(ctx context.Context, upstream string, until time.Time) error {
	_, err := s.state.Put(ctx, pauseKey(upstream), []byte(strconv.FormatInt(until.UnixNano(), 10)))
	return err
}
