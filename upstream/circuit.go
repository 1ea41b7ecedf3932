package upstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/catalog"
)

// ErrCircuitOpen matches every *CircuitOpenError.
var ErrCircuitOpen = errors.New("circuit open")

// CircuitOpenError is an attempt refused without contacting the upstream
// because its circuit breaker is open (or another replica is probing it).
type CircuitOpenError struct {
	Upstream   string
	Failures   int
	RetryAfter time.Duration
}

func (e *CircuitOpenError) Error() string {
	return fmt.Sprintf("circuit of upstream %s is open after %d failures; retry after %s", e.Upstream, e.Failures, e.RetryAfter.Round(time.Millisecond))
}

func (e *CircuitOpenError) Is(target error) bool { return target == ErrCircuitOpen }

type circuitState uint8

const (
	circuitClosed circuitState = iota
	circuitOpen
	circuitHalfOpen
)

var circuitNames = [...]string{"closed", "open", "half-open"}

func (s circuitState) String() string { return circuitNames[s] }

// circuitView is one immutable state of a circuit, as stored in KV.
type circuitView struct {
	state circuitState
	// until is a Unix time in nanoseconds: the end of the cool-down (open)
	// or of the probe's turn (half-open).
	until    int64
	failures int
	// rev is the KV revision the view came from (0: never written).
	rev uint64
}

func (v *circuitView) encode() []byte {
	return []byte(v.state.String() + " " + strconv.FormatInt(v.until, 10) + " " + strconv.Itoa(v.failures))
}

func decodeCircuit(b []byte) *circuitView {
	f := strings.Fields(string(b))
	v := &circuitView{}
	if len(f) != 3 {
		return v
	}
	for i, n := range circuitNames {
		if f[0] == n {
			v.state = circuitState(i)
		}
	}
	v.until, _ = strconv.ParseInt(f[1], 10, 64)
	v.failures, _ = strconv.Atoi(f[2])
	return v
}

// breaker is the circuit of one upstream. Consecutive failures are
// counted by each replica; the replica that sees the Nth opens the circuit
// for all of them through KV (compare-and-set on the key's revision), and
// after the cool-down exactly one replica wins the right to send a probe.
type breaker struct {
	upstream string
	cfg      catalog.CircuitBreaker
	st       *upState
	shared   *SharedState // nil, or not started: this process only
	clock    Clock
	obs      Observer

	consecutive atomic.Int32
}

// allow reports whether an attempt may go ahead, and whether it is the
// probe that decides if a cool-down circuit closes.
func (b *breaker) allow(ctx context.Context, now time.Time) (probe bool, err error) {
	for range 3 {
		v := b.st.circuit.Load()
		if v.state == circuitClosed {
			return false, nil
		}
		if left := v.until - now.UnixNano(); left > 0 {
			return false, &CircuitOpenError{Upstream: b.upstream, Failures: v.failures, RetryAfter: time.Duration(left)}
		}
		// Cool-down over, or the last probe never reported: try to become
		// the probe. Its turn lasts at most the cool-down, or its deadline.
		turn := b.cfg.CoolDown
		if dl, ok := ctx.Deadline(); ok {
			turn = min(turn, dl.Sub(now))
		}
		next := &circuitView{state: circuitHalfOpen, until: now.Add(turn).UnixNano(), failures: v.failures}
		if b.swap(ctx, v, next) {
			return true, nil
		}
	}
	return false, &CircuitOpenError{Upstream: b.upstream, Failures: b.st.circuit.Load().failures, RetryAfter: 100 * time.Millisecond}
}

// record counts an attempt's outcome.
func (b *breaker) record(ctx context.Context, now time.Time, failed, probe bool) {
	if !failed {
		if b.consecutive.Load() != 0 {
			b.consecutive.Store(0)
		}
		if v := b.st.circuit.Load(); probe && v.state != circuitClosed {
			b.swap(ctx, v, &circuitView{state: circuitClosed})
		}
		return
	}
	n := int(b.consecutive.Add(1))
	v := b.st.circuit.Load()
	if probe || (v.state == circuitClosed && n >= b.cfg.Failures) {
		b.consecutive.Store(0)
		b.swap(ctx, v, &circuitView{state: circuitOpen, until: now.Add(b.cfg.CoolDown).UnixNano(), failures: max(n, b.cfg.Failures)})
	}
}

// swap replaces view from with to, unless another replica changed it
// first. When KV cannot be reached the change still applies here, so this
// replica protects its upstream on its own.
func (b *breaker) swap(ctx context.Context, from, to *circuitView) bool {
	var kv jetstream.KeyValue
	if b.shared != nil {
		kv = b.shared.state
	}
	if kv == nil {
		to.rev = from.rev + 1
		ok := b.st.circuit.CompareAndSwap(from, to)
		if ok {
			b.changed(ctx, from, to)
		}
		return ok
	}
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	var rev uint64
	var err error
	if from.rev == 0 {
		rev, err = kv.Create(kctx, circuitKey(b.upstream), to.encode())
	} else {
		rev, err = kv.Update(kctx, circuitKey(b.upstream), to.encode(), from.rev)
	}
	switch {
	case isConflict(err):
		return false
	case err != nil:
		to.rev = from.rev
	default:
		to.rev = rev
	}
	for {
		cur := b.st.circuit.Load()
		if (err == nil && cur.rev >= to.rev) || (err != nil && cur != from) || b.st.circuit.CompareAndSwap(cur, to) {
			break
		}
	}
	b.changed(ctx, from, to)
	return true
}

func (b *breaker) changed(ctx context.Context, from, to *circuitView) {
	if co, ok := b.obs.(CircuitObserver); ok && from.state != to.state {
		co.OnCircuitChange(ctx, b.upstream, from.state.String(), to.state.String())
	}
}

func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}
