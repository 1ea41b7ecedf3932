package console

import (
	"slices"
	"time"

	"github.com/toolbus/toolbus/events"
)

// Statistics are computed in the console from the event feed, over a
// sliding window: counts in slots of window/slots, and latency
// percentiles over the most recent samples that fall in the window. No
// Prometheus is needed, and the cost is a few array writes per call.
const (
	statSlots   = 30
	statSamples = 1024
)

// Stat is what the console shows for one tool or upstream.
type Stat struct {
	Calls         int
	Errors        int
	PerMinute     float64
	ErrorRate     float64 // 0..1
	P50, P95, P99 float64 // milliseconds
	LastOutcome   string
	LastCall      time.Time
}

type slot struct {
	start  int64 // slot index (unix nanoseconds / slot width)
	calls  int
	errors int
}

type sample struct {
	at time.Time
	ms float64
}

type series struct {
	slots       [statSlots]slot
	samples     [statSamples]sample
	next        int
	lastOutcome string
	lastCall    time.Time
}

type stats struct {
	window    time.Duration
	width     time.Duration
	tools     map[string]*series
	upstreams map[string]*series
}

func newStats(window time.Duration) *stats {
	return &stats{window: window, width: window / statSlots, tools: map[string]*series{}, upstreams: map[string]*series{}}
}

func (s *stats) add(now time.Time, ev events.Call) {
	for _, x := range []struct {
		m   map[string]*series
		key string
	}{{s.tools, ev.Tool}, {s.upstreams, ev.Upstream}} {
		se := x.m[x.key]
		if se == nil {
			se = &series{}
			x.m[x.key] = se
		}
		se.add(now, s.width, ev)
	}
}

func (se *series) add(now time.Time, width time.Duration, ev events.Call) {
	idx := now.UnixNano() / int64(width)
	sl := &se.slots[idx%statSlots]
	if sl.start != idx {
		*sl = slot{start: idx}
	}
	sl.calls++
	if ev.Outcome != "ok" {
		sl.errors++
	}
	se.samples[se.next] = sample{at: now, ms: ev.DurationMS}
	se.next = (se.next + 1) % statSamples
	se.lastOutcome, se.lastCall = ev.Outcome, ev.Time
}

func (s *stats) snapshot(now time.Time) (tools, upstreams map[string]Stat) {
	tools = make(map[string]Stat, len(s.tools))
	for k, se := range s.tools {
		tools[k] = se.stat(now, s.window, s.width)
	}
	upstreams = make(map[string]Stat, len(s.upstreams))
	for k, se := range s.upstreams {
		upstreams[k] = se.stat(now, s.window, s.width)
	}
	return tools, upstreams
}

func (se *series) stat(now time.Time, window, width time.Duration) Stat {
	st := Stat{LastOutcome: se.lastOutcome, LastCall: se.lastCall}
	cur := now.UnixNano() / int64(width)
	for _, sl := range se.slots {
		if sl.calls > 0 && sl.start > cur-statSlots && sl.start <= cur {
			st.Calls += sl.calls
			st.Errors += sl.errors
		}
	}
	if st.Calls > 0 {
		st.PerMinute = float64(st.Calls) / window.Minutes()
		st.ErrorRate = float64(st.Errors) / float64(st.Calls)
	}
	var ms []float64
	for _, sm := range se.samples {
		if !sm.at.IsZero() && now.Sub(sm.at) < window {
			ms = append(ms, sm.ms)
		}
	}
	if len(ms) > 0 {
		slices.Sort(ms)
		st.P50, st.P95, st.P99 = percentile(ms, 0.50), percentile(ms, 0.95), percentile(ms, 0.99)
	}
	return st
}

// percentile of sorted values, nearest rank.
func percentile(sorted []float64, p float64) float64 {
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
