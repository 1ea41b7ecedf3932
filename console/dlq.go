package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/toolbus/toolbus/deadletter"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// listTimeout bounds reading the dead-letter stream for a page.
const listTimeout = 10 * time.Second

// deadLetterRow is a dead letter as listed (and as the JSON API returns it).
type deadLetterRow struct {
	Seq        uint64    `json:"seq"`
	ID         string    `json:"id"`
	FailedAt   time.Time `json:"failed_at"`
	Kind       string    `json:"kind"`
	Name       string    `json:"name"`
	Subject    string    `json:"subject"`
	Deliveries uint64    `json:"deliveries"`
	Reason     string    `json:"reason"`
	Class      string    `json:"class"`
	LastError  string    `json:"last_error,omitempty"`
}

func rowOf(e deadletter.Entry) deadLetterRow {
	name := e.Subject
	if e.Call != nil {
		name = e.Call.Upstream + "/" + e.Call.Tool
	}
	return deadLetterRow{
		Seq: e.Seq, ID: e.Id, FailedAt: e.FailedAt.AsTime(), Kind: e.Kind, Name: name, Subject: e.Subject,
		Deliveries: e.Deliveries, Reason: e.Reason, Class: className(e.Class), LastError: e.LastError,
	}
}

func className(c toolbusv1.ErrorClass) string {
	if c == toolbusv1.ErrorClass_ERROR_CLASS_UNSPECIFIED {
		return ""
	}
	n, ok := toolbusv1.ErrorClass_name[int32(c)]
	if !ok {
		return "unknown"
	}
	return lower(n[len("ERROR_CLASS_"):])
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

type dlqView struct {
	Rows  []deadLetterRow
	Error string
}

func (c *Console) listDeadLetters(ctx context.Context) ([]deadletter.Entry, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	return deadletter.List(ctx, c.js)
}

func (c *Console) dlqPage(w http.ResponseWriter, r *http.Request) {
	v := &dlqView{}
	entries, err := c.listDeadLetters(r.Context())
	if err != nil {
		v.Error = "The dead letters could not be read: " + err.Error()
	}
	// Newest first: what just failed is what the operator came for.
	for i := len(entries) - 1; i >= 0; i-- {
		v.Rows = append(v.Rows, rowOf(entries[i]))
	}
	flash := ""
	if n, err := strconv.ParseUint(r.URL.Query().Get("discarded"), 10, 64); err == nil {
		flash = fmt.Sprintf("Dead letter %d discarded.", n)
	}
	c.renderFlash(w, r, http.StatusOK, "dlq", v, flash)
}

// deadLetterView is one dead letter in full, secrets redacted.
type deadLetterView struct {
	Row     deadLetterRow
	Handler string
	Stream  string
	SSeq    uint64
	Headers []kv
	Call    *callPayload
	Event   *eventPayload
	// Undecodable explains a payload that is shown as bytes only.
	Undecodable string
}

type callPayload struct {
	ID, Tool, Upstream, Kind, IdempotencyKey string
	Caller, Tenant                           string
	Arguments                                string
	AcceptedAt, Deadline                     time.Time
	Budget                                   time.Duration
}

type eventPayload struct {
	ID, Source, Type, Scheme string
	ReceivedAt               time.Time
	Headers                  []kv
	Body                     string
}

func viewOf(e deadletter.Entry) *deadLetterView {
	v := &deadLetterView{Row: rowOf(e), Handler: e.Handler, Stream: e.Stream, SSeq: e.StreamSequence, Headers: redactHeaders(e.Headers)}
	switch {
	case e.Call != nil:
		cl := e.Call
		v.Call = &callPayload{
			ID: cl.Id, Tool: cl.Tool, Upstream: cl.Upstream, Kind: cl.Kind, IdempotencyKey: cl.IdempotencyKey,
			Arguments: redactJSON(cl.Arguments),
			// The caller's token, if it travelled, is never shown.
			Caller: cl.GetCaller().GetSubject(), Tenant: cl.GetCaller().GetTenant(),
		}
		if cl.AcceptedAt != nil {
			v.Call.AcceptedAt = cl.AcceptedAt.AsTime()
		}
		if cl.Deadline != nil {
			v.Call.Deadline = cl.Deadline.AsTime()
			if cl.AcceptedAt != nil {
				v.Call.Budget = v.Call.Deadline.Sub(v.Call.AcceptedAt)
			}
		}
	case e.Kind == "webhook":
		ev := &toolbusv1.WebhookEvent{}
		if err := proto.Unmarshal(e.Payload, ev); err != nil || ev.Source == "" {
			v.Undecodable = "the stored event could not be decoded"
			break
		}
		v.Event = eventView(ev)
	default:
		v.Undecodable = fmt.Sprintf("the payload (%d bytes) could not be decoded", len(e.Payload))
	}
	return v
}

func eventView(ev *toolbusv1.WebhookEvent) *eventPayload {
	p := &eventPayload{ID: ev.Id, Source: ev.Source, Type: ev.Type, Scheme: ev.Scheme, Headers: redactHeaders(ev.Headers), Body: redactJSON(ev.Body)}
	if ev.ReceivedAt != nil {
		p.ReceivedAt = ev.ReceivedAt.AsTime()
	}
	return p
}

func (c *Console) getDeadLetter(w http.ResponseWriter, r *http.Request) (deadletter.Entry, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), listTimeout)
	defer cancel()
	e, err := deadletter.Get(ctx, c.js, r.PathValue("id"))
	switch {
	case errors.Is(err, deadletter.ErrNotFound):
		c.refuse(w, r, http.StatusNotFound, "No dead letter "+r.PathValue("id")+" (already replayed or discarded?).")
		return e, false
	case err != nil:
		c.refuse(w, r, http.StatusBadGateway, "The dead letter could not be read: "+err.Error())
		return e, false
	}
	return e, true
}

func (c *Console) deadLetterPage(w http.ResponseWriter, r *http.Request) {
	e, ok := c.getDeadLetter(w, r)
	if !ok {
		return
	}
	c.render(w, r, http.StatusOK, "deadletter", viewOf(e))
}

// replayOutcome is what one replay did (page and JSON API).
type replayOutcome struct {
	Seq  uint64 `json:"seq"`
	ID   string `json:"id"`
	Name string `json:"name"`
	// Status is succeeded, failed (answered with an error again),
	// republished (events: no answer awaited) or not_replayed.
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
	// Result is the upstream's answer, secrets redacted.
	Result   string `json:"result,omitempty"`
	Attempts int32  `json:"attempts,omitempty"`
}

func (c *Console) replay(ctx context.Context, e deadletter.Entry) replayOutcome {
	out := replayOutcome{Seq: e.Seq, ID: e.Id, Name: rowOf(e).Name}
	res, err := deadletter.Replay(ctx, c.nc, c.js, e, deadletter.ReplayOptions{})
	switch {
	case err != nil:
		out.Status, out.Message = "not_replayed", err.Error()
	case res == nil:
		out.Status, out.Message = "republished", "republished on "+e.Subject
	case res.Error != nil:
		out.Status, out.Message, out.Attempts = "failed", res.Error.Message, res.Attempts
	default:
		out.Status, out.Attempts = "succeeded", res.Attempts
		if len(res.Json) > 0 {
			out.Result = redactJSON(res.Json)
		} else {
			out.Result = shownText([]byte(res.Text))
		}
	}
	c.log.Info("console replayed a dead letter", "who", principalFrom(ctx).who, "seq", e.Seq, "id", e.Id, "status", out.Status)
	return out
}

type replayedView struct{ Outcomes []replayOutcome }

func (c *Console) replaySubmit(w http.ResponseWriter, r *http.Request) {
	e, ok := c.getDeadLetter(w, r)
	if !ok {
		return
	}
	c.render(w, r, http.StatusOK, "replayed", &replayedView{Outcomes: []replayOutcome{c.replay(r.Context(), e)}})
}

func (c *Console) replayAllSubmit(w http.ResponseWriter, r *http.Request) {
	entries, err := c.listDeadLetters(r.Context())
	if err != nil {
		c.refuse(w, r, http.StatusBadGateway, "The dead letters could not be read: "+err.Error())
		return
	}
	v := &replayedView{}
	for _, e := range entries {
		if r.Context().Err() != nil {
			break
		}
		v.Outcomes = append(v.Outcomes, c.replay(r.Context(), e))
	}
	c.render(w, r, http.StatusOK, "replayed", v)
}

func (c *Console) discard(w http.ResponseWriter, r *http.Request) (deadletter.Entry, bool) {
	e, ok := c.getDeadLetter(w, r)
	if !ok {
		return e, false
	}
	if err := deadletter.Remove(r.Context(), c.js, e); err != nil {
		c.refuse(w, r, http.StatusBadGateway, "The dead letter could not be discarded: "+err.Error())
		return e, false
	}
	c.log.Info("console discarded a dead letter", "who", principalFrom(r.Context()).who, "seq", e.Seq, "id", e.Id)
	return e, true
}

func (c *Console) discardSubmit(w http.ResponseWriter, r *http.Request) {
	if e, ok := c.discard(w, r); ok {
		http.Redirect(w, r, BasePath+"/dlq?discarded="+strconv.FormatUint(e.Seq, 10), http.StatusSeeOther)
	}
}

func (c *Console) apiDeadLetters(w http.ResponseWriter, r *http.Request) {
	entries, err := c.listDeadLetters(r.Context())
	if err != nil {
		c.refuse(w, r, http.StatusBadGateway, err.Error())
		return
	}
	rows := make([]deadLetterRow, 0, len(entries))
	for _, e := range entries {
		rows = append(rows, rowOf(e))
	}
	writeJSON(w, http.StatusOK, rows)
}

func (c *Console) apiReplay(w http.ResponseWriter, r *http.Request) {
	e, ok := c.getDeadLetter(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, c.replay(r.Context(), e))
}

func (c *Console) apiDiscard(w http.ResponseWriter, r *http.Request) {
	if e, ok := c.discard(w, r); ok {
		writeJSON(w, http.StatusOK, map[string]any{"seq": e.Seq, "id": e.Id, "status": "discarded"})
	}
}
