package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The trace page draws one trace as a waterfall, read from Jaeger's HTTP
// API (Options.JaegerURL): a Jaeger built from its Go module, as
// `make jaeger` runs, serves the API but no UI of its own.

// traceIDRE is what a trace id looks like in a URL: 16 or 32 hex digits.
var traceIDRE = regexp.MustCompile(`^[0-9a-f]{16}([0-9a-f]{16})?$`)

// jaegerTimeout bounds one read of Jaeger's API.
const jaegerTimeout = 5 * time.Second

// maxTraceBytes bounds the answer read from Jaeger.
const maxTraceBytes = 16 << 20

// jaegerSpan is the part of a span in Jaeger's /api/traces answer the
// page shows. Times are microseconds.
type jaegerSpan struct {
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	StartTime int64      `json:"startTime"`
	Duration  int64      `json:"duration"`
	Tags      []jaegerKV `json:"tags"`
	Logs      []struct {
		Timestamp int64      `json:"timestamp"`
		Fields    []jaegerKV `json:"fields"`
	} `json:"logs"`
	ProcessID string `json:"processID"`
}

type jaegerKV struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

type jaegerAnswer struct {
	Data []struct {
		TraceID   string       `json:"traceID"`
		Spans     []jaegerSpan `json:"spans"`
		Processes map[string]struct {
			ServiceName string `json:"serviceName"`
		} `json:"processes"`
	} `json:"data"`
}

// traceView is the trace page.
type traceView struct {
	TraceID    string
	DurationMS float64
	Services   []string
	Spans      []spanRow
	JaegerURL  string
}

// spanRow is one span of the waterfall, in tree order.
type spanRow struct {
	Service, Operation, Kind string
	// Depth is the span's depth in the tree (0 for roots), at most 9 for
	// the indentation classes.
	Depth               int
	StartMS, DurationMS float64
	// X and W place the span's bar on a 0–1000 scale of the trace.
	X, W   float64
	Error  bool
	Events []string
	Tags   []string
}

var errTraceNotFound = errors.New("trace not found")

func (c *Console) tracePage(w http.ResponseWriter, r *http.Request) {
	id := strings.ToLower(r.PathValue("id"))
	switch {
	case c.opts.JaegerURL == "":
		c.refuse(w, r, http.StatusNotFound, "No Jaeger is configured: start Toolbus with --jaeger-ui (TOOLBUS_JAEGER_UI) to read traces here.")
		return
	case !traceIDRE.MatchString(id):
		c.refuse(w, r, http.StatusBadRequest, "A trace id is 16 or 32 hexadecimal digits.")
		return
	}
	v, err := c.fetchTrace(r.Context(), id)
	switch {
	case errors.Is(err, errTraceNotFound):
		c.refuse(w, r, http.StatusNotFound, fmt.Sprintf("Jaeger has no trace %s (yet: spans are exported in batches, a few seconds after the call).", id))
		return
	case err != nil:
		c.log.Warn("console: reading a trace from Jaeger", "trace_id", id, "error", err)
		c.refuse(w, r, http.StatusBadGateway, "Jaeger could not be read: "+err.Error())
		return
	}
	c.render(w, r, http.StatusOK, "trace", v)
}

// fetchTrace reads trace id from Jaeger and lays it out.
func (c *Console) fetchTrace(ctx context.Context, id string) (*traceView, error) {
	ctx, cancel := context.WithTimeout(ctx, jaegerTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.opts.JaegerURL+"/api/traces/"+id, nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s/api/traces: %w", c.opts.JaegerURL, err)
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode == http.StatusNotFound:
		return nil, errTraceNotFound
	case res.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s/api/traces answered %s", c.opts.JaegerURL, res.Status)
	}
	var ans jaegerAnswer
	if err := json.NewDecoder(io.LimitReader(res.Body, maxTraceBytes)).Decode(&ans); err != nil {
		return nil, fmt.Errorf("GET %s/api/traces: undecodable answer: %w", c.opts.JaegerURL, err)
	}
	if len(ans.Data) == 0 || len(ans.Data[0].Spans) == 0 {
		return nil, errTraceNotFound
	}
	t := ans.Data[0]
	services := map[string]string{}
	for pid, p := range t.Processes {
		services[pid] = p.ServiceName
	}
	v := layoutTrace(t.Spans, services)
	v.TraceID, v.JaegerURL = id, c.opts.JaegerURL
	return v, nil
}

// layoutTrace orders spans as a tree (children by start time under their
// parent; a span whose parent is not in the trace is a root) and places
// their bars on the trace's time scale.
func layoutTrace(spans []jaegerSpan, services map[string]string) *traceView {
	byID := map[string]bool{}
	start, end := spans[0].StartTime, spans[0].StartTime+spans[0].Duration
	for _, s := range spans {
		byID[s.SpanID] = true
		start = min(start, s.StartTime)
		end = max(end, s.StartTime+s.Duration)
	}
	children := map[string][]jaegerSpan{}
	var roots []jaegerSpan
	for _, s := range spans {
		parent := ""
		for _, ref := range s.References {
			if byID[ref.SpanID] && ref.SpanID != s.SpanID {
				parent = ref.SpanID
				break
			}
		}
		if parent == "" {
			roots = append(roots, s)
		} else {
			children[parent] = append(children[parent], s)
		}
	}
	byStart := func(a, b jaegerSpan) int { return int(a.StartTime - b.StartTime) }
	total := float64(max(end-start, 1))
	v := &traceView{DurationMS: float64(end-start) / 1000}
	seen := map[string]bool{}
	visited := map[string]bool{}
	var walk func(s jaegerSpan, depth int)
	walk = func(s jaegerSpan, depth int) {
		if visited[s.SpanID] { // a reference cycle in a malformed trace
			return
		}
		visited[s.SpanID] = true
		row := spanRow{
			Service: services[s.ProcessID], Operation: s.OperationName, Depth: min(depth, 9),
			StartMS: float64(s.StartTime-start) / 1000, DurationMS: float64(s.Duration) / 1000,
			X: 1000 * float64(s.StartTime-start) / total, W: max(1000*float64(s.Duration)/total, 2),
		}
		for _, tag := range s.Tags {
			val := fmt.Sprint(tag.Value)
			switch tag.Key {
			case "span.kind":
				row.Kind = val
			case "error":
				row.Error = row.Error || val == "true"
			case "otel.status_code":
				row.Error = row.Error || val == "ERROR"
			}
			row.Tags = append(row.Tags, tag.Key+" = "+val)
		}
		for _, l := range s.Logs {
			for _, f := range l.Fields {
				if f.Key == "event" {
					row.Events = append(row.Events, fmt.Sprint(f.Value))
				}
			}
		}
		if !seen[row.Service] && row.Service != "" {
			seen[row.Service] = true
			v.Services = append(v.Services, row.Service)
		}
		v.Spans = append(v.Spans, row)
		kids := children[s.SpanID]
		slices.SortStableFunc(kids, byStart)
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	slices.SortStableFunc(roots, byStart)
	for _, r := range roots {
		walk(r, 0)
	}
	// Spans no root reaches (a reference cycle) are drawn too, as roots.
	rest := slices.Clone(spans)
	slices.SortStableFunc(rest, byStart)
	for _, s := range rest {
		if !visited[s.SpanID] {
			walk(s, 0)
		}
	}
	return v
}
