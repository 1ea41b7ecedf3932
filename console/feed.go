package console

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/toolbus/toolbus/events"
)

// subscriberBuffer is how many events a slow browser may lag behind
// before it misses some (it is told, and reloads).
const subscriberBuffer = 256

// feed keeps the recent summaries of the event feed, the statistics
// computed from them, and the live streams of connected browsers.
type feed struct {
	now func() time.Time

	mu    sync.Mutex
	calls ring[events.Call]
	hooks ring[events.Webhook]
	stats *stats
	// hookCounts counts deliveries per source and outcome; hookReasons
	// rejections per source and reason, since the console started.
	hookCounts  map[string]map[string]int
	hookReasons map[string]map[string]int
	subs        map[*subscriber]struct{}
	closed      bool
	done        chan struct{}
}

type subscriber struct {
	ch chan []byte
	// lagged is set when an event could not be queued.
	lagged bool
}

func newFeed(window time.Duration, now func() time.Time) *feed {
	return &feed{
		now:         now,
		calls:       newRing[events.Call](recentCalls),
		hooks:       newRing[events.Webhook](recentWebhooks),
		stats:       newStats(window),
		hookCounts:  map[string]map[string]int{},
		hookReasons: map[string]map[string]int{},
		subs:        map[*subscriber]struct{}{},
		done:        make(chan struct{}),
	}
}

// receive handles one feed message. Malformed messages are dropped: the
// feed is best effort and anyone on the bus could publish there.
func (f *feed) receive(subject string, data []byte) {
	switch subject {
	case events.SubjectCall:
		var ev events.Call
		if json.Unmarshal(data, &ev) != nil || ev.Tool == "" {
			return
		}
		f.addCall(ev)
	case events.SubjectWebhook:
		var ev events.Webhook
		if json.Unmarshal(data, &ev) != nil || ev.Source == "" {
			return
		}
		f.addWebhook(ev)
	}
}

func (f *feed) addCall(ev events.Call) {
	// Re-encoded so that browsers only ever get the known fields.
	msg, err := json.Marshal(&ev)
	if err != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls.add(ev)
	f.stats.add(f.now(), ev)
	for s := range f.subs {
		select {
		case s.ch <- msg:
		default:
			s.lagged = true
		}
	}
}

func (f *feed) addWebhook(ev events.Webhook) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hooks.add(ev)
	inc(f.hookCounts, ev.Source, ev.Outcome)
	if ev.Reason != "" && ev.Outcome != events.WebhookStored && ev.Outcome != events.WebhookDuplicate {
		inc(f.hookReasons, ev.Source, ev.Reason)
	}
}

func inc(m map[string]map[string]int, a, b string) {
	if m[a] == nil {
		m[a] = map[string]int{}
	}
	m[a][b]++
}

// subscribe registers a live stream; cancel must be called when it ends.
// It returns nil once the feed is closed.
func (f *feed) subscribe() (*subscriber, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, func() {}
	}
	s := &subscriber{ch: make(chan []byte, subscriberBuffer)}
	f.subs[s] = struct{}{}
	return s, func() {
		f.mu.Lock()
		delete(f.subs, s)
		f.mu.Unlock()
	}
}

func (f *feed) takeLagged(s *subscriber) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := s.lagged
	s.lagged = false
	return l
}

// close ends every live stream.
func (f *feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.done)
	}
}

// recentCalls returns the kept call summaries, newest first.
func (f *feed) recentCalls() []events.Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls.newestFirst()
}

func (f *feed) call(id string) (events.Call, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls.newestFirst() {
		if c.ID == id {
			return c, true
		}
	}
	return events.Call{}, false
}

// webhookSummary returns recent deliveries (newest first) and copies of
// the counters.
func (f *feed) webhookSummary() ([]events.Webhook, map[string]map[string]int, map[string]map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cp := func(m map[string]map[string]int) map[string]map[string]int {
		out := make(map[string]map[string]int, len(m))
		for k, v := range m {
			out[k] = make(map[string]int, len(v))
			for k2, n := range v {
				out[k][k2] = n
			}
		}
		return out
	}
	return f.hooks.newestFirst(), cp(f.hookCounts), cp(f.hookReasons)
}

// snapshot returns the statistics of every tool and upstream now.
func (f *feed) snapshot() (tools, upstreams map[string]Stat) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats.snapshot(f.now())
}

// ring keeps the last n values.
type ring[T any] struct {
	buf  []T
	next int
	full bool
}

func newRing[T any](n int) ring[T] { return ring[T]{buf: make([]T, n)} }

func (r *ring[T]) add(v T) {
	r.buf[r.next] = v
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

func (r *ring[T]) newestFirst() []T {
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	out := make([]T, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}
