// Package loadgen drives calls against a target from many concurrent
// workers, checks that every answer belongs to its call, and summarises
// latency. It starts no servers and knows no protocol: a Target does.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A Target hands out one client per worker (for MCP, one session each).
type Target interface {
	Open(ctx context.Context) (Client, error)
}

// A Client makes calls one at a time.
type Client interface {
	// Call asks for id and returns the id the answer carries. An error is
	// a failed call; a returned id that differs from id is a wrong answer.
	Call(ctx context.Context, id string) (got string, err error)
	Close() error
}

// ErrNoID is returned by clients whose answer carried no id at all.
var ErrNoID = errors.New("answer carries no id")

// Options bound one run.
type Options struct {
	Concurrency int
	Warmup      time.Duration // calls made but not timed
	Duration    time.Duration // the measured window
	// PayloadBytes pads each id to this length (the id travels in the
	// request and comes back twice in the answer). 0 leaves ids short.
	PayloadBytes int
	// Tag makes ids unique across runs in one process.
	Tag string
	// CallTimeout bounds one call (default 10s).
	CallTimeout time.Duration
	// MaxCalls caps the calls of one run, a safety bound (default 10M).
	MaxCalls int64
	// OnWindow, when set, is called as the measured window opens and
	// closes, so the caller can snapshot CPU time at the same instants.
	OnWindow func(open bool)
}

// Result is what one run measured.
type Result struct {
	Calls      int64           // successful, correct calls in the window
	Elapsed    time.Duration   // length of the window
	Latencies  []time.Duration // of Calls, sorted
	Errors     int64           // failed calls, warm-up included
	Wrong      int64           // answers carrying another id, warm-up included
	Samples    []string        // the first few errors and wrong answers
	SetupError error           // a client could not be opened
}

// Throughput is correct calls per second in the window.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Calls) / r.Elapsed.Seconds()
}

// Quantile returns the q-quantile latency (0 when there were no calls).
func (r *Result) Quantile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(q * float64(len(r.Latencies)))
	if i >= len(r.Latencies) {
		i = len(r.Latencies) - 1
	}
	return r.Latencies[i]
}

const maxSamples = 5

// Run opens Concurrency clients, runs calls through warm-up and window, and
// closes the clients. It returns early with SetupError when a client
// cannot be opened.
func Run(ctx context.Context, t Target, o Options) *Result {
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.MaxCalls <= 0 {
		o.MaxCalls = 10_000_000
	}
	res := &Result{}
	clients := make([]Client, o.Concurrency)
	defer func() {
		for _, c := range clients {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	for i := range clients {
		c, err := t.Open(ctx)
		if err != nil {
			res.SetupError = fmt.Errorf("open client %d of %d: %w", i+1, o.Concurrency, err)
			return res
		}
		clients[i] = c
	}

	var (
		recording atomic.Bool
		stop      atomic.Bool
		issued    atomic.Int64
		errs      atomic.Int64
		wrong     atomic.Int64
		mu        sync.Mutex
		lats      = make([][]time.Duration, len(clients))
		wg        sync.WaitGroup
	)
	sample := func(s string) {
		mu.Lock()
		if len(res.Samples) < maxSamples {
			res.Samples = append(res.Samples, s)
		}
		mu.Unlock()
	}
	for w, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids := newIDs(o.Tag, w, o.PayloadBytes)
			var mine []time.Duration
			for !stop.Load() && issued.Add(1) <= o.MaxCalls && ctx.Err() == nil {
				id := ids.next()
				cctx, cancel := context.WithTimeout(ctx, o.CallTimeout)
				start := time.Now()
				got, err := c.Call(cctx, id)
				d := time.Since(start)
				cancel()
				switch {
				case err != nil:
					errs.Add(1)
					sample(fmt.Sprintf("error: %v", trim(err.Error())))
					// A failing server must not turn the loop into a spin.
					time.Sleep(time.Millisecond)
				case got != id:
					wrong.Add(1)
					sample(fmt.Sprintf("wrong answer: asked for %q, got %q", trim(id), trim(got)))
				case recording.Load():
					mine = append(mine, d)
				}
			}
			lats[w] = mine
		}()
	}

	sleep(ctx, o.Warmup)
	if o.OnWindow != nil {
		o.OnWindow(true)
	}
	recording.Store(true)
	start := time.Now()
	sleep(ctx, o.Duration)
	recording.Store(false)
	res.Elapsed = time.Since(start)
	if o.OnWindow != nil {
		o.OnWindow(false)
	}
	stop.Store(true)
	wg.Wait()

	res.Latencies = slices.Concat(lats...)
	slices.Sort(res.Latencies)
	res.Calls = int64(len(res.Latencies))
	res.Errors, res.Wrong = errs.Load(), wrong.Load()
	return res
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func trim(s string) string {
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}

// ids makes the ids of one worker: unique across workers and runs, padded
// to a payload size with URL-safe filler.
type ids struct {
	prefix string
	pad    int
	seq    int
	buf    []byte
}

func newIDs(tag string, worker, pad int) *ids {
	return &ids{prefix: tag + "-w" + strconv.Itoa(worker) + "-", pad: pad}
}

const filler = "abcdefghijklmnopqrstuvwxyz0123456789"

func (g *ids) next() string {
	g.seq++
	g.buf = append(g.buf[:0], g.prefix...)
	g.buf = strconv.AppendInt(g.buf, int64(g.seq), 10)
	if len(g.buf) < g.pad {
		g.buf = append(g.buf, '-')
		for i := 0; len(g.buf) < g.pad; i++ {
			g.buf = append(g.buf, filler[i%len(filler)])
		}
	}
	return string(g.buf)
}

// TagFor builds a short run tag from a scenario name and concurrency.
func TagFor(scenario string, concurrency int) string {
	return strings.NewReplacer(" ", "", "/", "").Replace(scenario) + "-c" + strconv.Itoa(concurrency)
}
