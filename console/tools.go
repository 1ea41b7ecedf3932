package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
)

type upstreamRow struct {
	Name        string
	Kind        string
	URL         string
	Concurrency int
	RateLimit   string
	Breaker     string
	Tools       int
	Stat        Stat
	// Backlog is from the upstream's durable consumer (BacklogErr when
	// it could not be read).
	Pending, AckPending, Redelivered uint64
	BacklogErr                       string
	// Circuit is closed, open or half-open; CircuitUntil ends a cool-down.
	Circuit      string
	CircuitUntil time.Time
	Failures     int
	PausedUntil  time.Time
	// Tokens is the shared rate-limit bucket's level ("" without a limit).
	Tokens string
}

type toolRow struct {
	Name, Title, Upstream, Request string
	ReadOnly, Destructive          bool
	Timeout                        time.Duration
	Scopes                         []string
	Stat                           Stat
}

type toolsView struct {
	File, Digest string
	Reload       reloadStatus
	Window       time.Duration
	Upstreams    []upstreamRow
	Tools        []toolRow
}

func (c *Console) toolsPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	c.render(w, r, http.StatusOK, "tools", c.toolsView(ctx))
}

// apiStats returns the sliding-window statistics as JSON.
func (c *Console) apiStats(w http.ResponseWriter, r *http.Request) {
	tools, ups := c.feed.snapshot()
	writeJSON(w, http.StatusOK, map[string]any{"window_seconds": c.opts.Window.Seconds(), "tools": tools, "upstreams": ups})
}

func (c *Console) toolsView(ctx context.Context) *toolsView {
	toolStats, upStats := c.feed.snapshot()
	v := &toolsView{File: c.catalog().File, Digest: c.catalog().Digest, Reload: c.reloadStatus(), Window: c.opts.Window}
	count := map[string]int{}
	for _, t := range c.catalog().Tools {
		count[t.Upstream.Name]++
		row := toolRow{Name: t.Name, Title: t.Title, Upstream: t.Upstream.Name, Timeout: t.CallTimeout(), Scopes: t.Scopes, Stat: toolStats[t.Name]}
		if t.GraphQL != nil {
			row.Request = "GraphQL " + map[bool]string{true: "mutation", false: "query"}[t.Mutating()]
		} else {
			row.Request = t.Method + " " + t.Path
		}
		a := t.Annotations
		row.ReadOnly = a.ReadOnly != nil && *a.ReadOnly || a.ReadOnly == nil && !t.Mutating()
		row.Destructive = a.Destructive != nil && *a.Destructive
		v.Tools = append(v.Tools, row)
	}
	stateKV, _ := c.js.KeyValue(ctx, bus.BucketUpstreamState)
	rateKV, _ := c.js.KeyValue(ctx, bus.BucketRateLimits)
	for _, u := range c.catalog().Upstreams {
		row := upstreamRow{Name: u.Name, Kind: string(u.Kind), URL: displayURL(u), Concurrency: u.Concurrency, Tools: count[u.Name], Stat: upStats[u.Name]}
		if rl := u.RateLimit; rl != nil {
			row.RateLimit = fmt.Sprintf("%d per %s (burst %d)", rl.Requests, rl.Per, rl.Burst)
		}
		if cb := u.CircuitBreaker; cb != nil {
			row.Breaker = fmt.Sprintf("opens after %d failures, cool-down %s", cb.Failures, cb.CoolDown)
		}
		c.readBacklog(ctx, u, &row)
		readUpstreamState(ctx, stateKV, rateKV, u, &row)
		v.Upstreams = append(v.Upstreams, row)
	}
	slices.SortFunc(v.Upstreams, func(a, b upstreamRow) int { return strings.Compare(a.Name, b.Name) })
	return v
}

func (c *Console) readBacklog(ctx context.Context, u *catalog.Upstream, row *upstreamRow) {
	cons, err := c.js.Consumer(ctx, bus.StreamCalls, bus.CallConsumerName(string(u.Kind), u.Name))
	var ci *jetstream.ConsumerInfo
	if err == nil {
		ci, err = cons.Info(ctx)
	}
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		row.BacklogErr = "no consumer (worker not started)"
	case err != nil:
		row.BacklogErr = "unavailable"
	default:
		row.Pending, row.AckPending, row.Redelivered = ci.NumPending, uint64(ci.NumAckPending), uint64(ci.NumRedelivered)
	}
}

// readUpstreamState reads the reliability state every replica shares
// (package upstream writes it; formats in upstream/shared.go, circuit.go
// and quota.go): "circuit.<upstream>" = "<state> <until ns> <failures>",
// "pause.<upstream>" = "<until ns>", rate bucket = "<level> <updated ns>".
func readUpstreamState(ctx context.Context, stateKV, rateKV jetstream.KeyValue, u *catalog.Upstream, row *upstreamRow) {
	row.Circuit = "closed"
	if stateKV != nil {
		if e, err := stateKV.Get(ctx, "circuit."+u.Name); err == nil {
			if f := strings.Fields(string(e.Value())); len(f) == 3 {
				row.Circuit = f[0]
				if ns, err := strconv.ParseInt(f[1], 10, 64); err == nil && ns > 0 && f[0] != "closed" {
					row.CircuitUntil = time.Unix(0, ns)
				}
				row.Failures, _ = strconv.Atoi(f[2])
			}
		}
		if e, err := stateKV.Get(ctx, "pause."+u.Name); err == nil {
			if ns, err := strconv.ParseInt(string(e.Value()), 10, 64); err == nil && time.Unix(0, ns).After(time.Now()) {
				row.PausedUntil = time.Unix(0, ns)
			}
		}
	}
	if rateKV != nil && u.RateLimit != nil {
		row.Tokens = "full"
		if e, err := rateKV.Get(ctx, u.Name); err == nil {
			if l, _, ok := strings.Cut(string(e.Value()), " "); ok {
				if level, err := strconv.ParseFloat(l, 64); err == nil {
					row.Tokens = fmt.Sprintf("%.0f left at last lease", level)
				}
			}
		}
	}
}

// displayURL shows where an upstream is, without user info or query.
func displayURL(u *catalog.Upstream) string {
	if u.BaseURL == nil {
		return ""
	}
	cp := *u.BaseURL
	cp.User, cp.RawQuery, cp.Fragment = nil, "", ""
	return cp.String()
}
