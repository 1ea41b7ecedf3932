package console

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/toolbus/toolbus/events"
)

// callFilter selects calls on the Live calls page and API.
type callFilter struct {
	Tool     string
	Upstream string
	// Outcome is "", "ok", "errors" or one outcome code.
	Outcome string
	// Caller matches a substring of the caller.
	Caller string
}

func filterFrom(r *http.Request) callFilter {
	q := r.URL.Query()
	return callFilter{Tool: q.Get("tool"), Upstream: q.Get("upstream"), Outcome: q.Get("outcome"), Caller: q.Get("caller")}
}

func (f callFilter) match(c events.Call) bool {
	switch {
	case f.Tool != "" && c.Tool != f.Tool,
		f.Upstream != "" && c.Upstream != f.Upstream,
		f.Caller != "" && !strings.Contains(c.Caller, f.Caller):
		return false
	}
	switch f.Outcome {
	case "":
		return true
	case "errors":
		return c.Outcome != "ok"
	}
	return c.Outcome == f.Outcome
}

type callsView struct {
	Filter    callFilter
	Calls     []events.Call
	Tools     []string
	Upstreams []string
	Outcomes  []string
	Kept      int
}

const callsShown = 200

func (c *Console) callsPage(w http.ResponseWriter, r *http.Request) {
	f := filterFrom(r)
	v := &callsView{Filter: f, Kept: recentCalls}
	for _, call := range c.feed.recentCalls() {
		if f.match(call) && len(v.Calls) < callsShown {
			v.Calls = append(v.Calls, call)
		}
	}
	for _, t := range c.catalog().Tools {
		v.Tools = append(v.Tools, t.Name)
	}
	for name := range c.catalog().Upstreams {
		v.Upstreams = append(v.Upstreams, name)
	}
	slices.Sort(v.Tools)
	slices.Sort(v.Upstreams)
	v.Outcomes = []string{"ok", "timeout", "rate_limited", "not_found", "upstream_failed", "upstream_rejected",
		"upstream_unreachable", "invalid_arguments", "bus_unavailable", "cancelled", "internal"}
	c.render(w, r, http.StatusOK, "calls", v)
}

type callView struct {
	Call      events.Call
	JaegerURL string
}

func (c *Console) callPage(w http.ResponseWriter, r *http.Request) {
	call, ok := c.feed.call(r.PathValue("id"))
	if !ok {
		c.refuse(w, r, http.StatusNotFound, fmt.Sprintf("Call %q is not among the last %d calls this console has seen.", r.PathValue("id"), recentCalls))
		return
	}
	c.render(w, r, http.StatusOK, "call", &callView{Call: call, JaegerURL: c.opts.JaegerURL})
}

// apiCalls returns recent calls, newest first, filtered like the page.
func (c *Console) apiCalls(w http.ResponseWriter, r *http.Request) {
	f := filterFrom(r)
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > recentCalls {
		limit = callsShown
	}
	out := []events.Call{}
	for _, call := range c.feed.recentCalls() {
		if f.match(call) && len(out) < limit {
			out = append(out, call)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// heartbeat keeps idle event streams open through proxies.
const heartbeat = 15 * time.Second

// apiCallStream pushes every call summary to the browser as a server-sent
// event ("call"), as it arrives from the feed. A browser that falls too far
// behind gets a "lagged" event and drops nothing else.
func (c *Console) apiCallStream(w http.ResponseWriter, r *http.Request) {
	sub, cancel := c.feed.subscribe()
	defer cancel()
	if sub == nil {
		c.refuse(w, r, http.StatusServiceUnavailable, "The console is shutting down.")
		return
	}
	rc := http.NewResponseController(w)
	// An event stream lives as long as the page: no write deadline.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 2000\n: connected\n\n"); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-c.feed.done:
			return
		case <-t.C:
			_, err = fmt.Fprint(w, ": ping\n\n")
		case msg := <-sub.ch:
			if c.feed.takeLagged(sub) {
				_, err = fmt.Fprint(w, "event: lagged\ndata: {}\n\n")
			}
			if err == nil {
				_, err = fmt.Fprintf(w, "event: call\ndata: %s\n\n", msg)
			}
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return
		}
	}
}
