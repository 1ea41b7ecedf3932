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
	"google.golang.org/protobuf/proto"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/events"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/webhookcli"
)

// Reading recent events walks the stream backwards by sequence (direct
// gets): eventsShown matches at most, among the last eventsScanned.
const (
	eventsShown   = 50
	eventsScanned = 2000
)

type sourceRow struct {
	Name, Scheme string
	Outcomes     map[string]int
	Reasons      map[string]int
	Total        int
	Projections  []string
}

type storedEvent struct {
	Seq        uint64
	Source     string
	Type       string
	ID         string
	ReceivedAt time.Time
	Size       int
}

type webhooksView struct {
	Source     string
	Sources    []sourceRow
	Stored     []storedEvent
	Deliveries []events.Webhook
	Error      string
	Outcomes   []string
}

func (c *Console) webhooksPage(w http.ResponseWriter, r *http.Request) {
	source := r.URL.Query().Get("source")
	v := &webhooksView{Source: source, Outcomes: []string{events.WebhookStored, events.WebhookDuplicate, events.WebhookRejected,
		events.WebhookTooLarge, events.WebhookUnavailable}}
	recent, counts, reasons := c.feed.webhookSummary()
	for name, s := range c.catalog().Sources {
		row := sourceRow{Name: name, Scheme: s.Scheme, Outcomes: counts[name], Reasons: reasons[name]}
		for _, n := range counts[name] {
			row.Total += n
		}
		for pname, p := range c.catalog().Projections {
			if p.FedBy(name) {
				row.Projections = append(row.Projections, pname)
			}
		}
		slices.Sort(row.Projections)
		v.Sources = append(v.Sources, row)
	}
	slices.SortFunc(v.Sources, func(a, b sourceRow) int { return strings.Compare(a.Name, b.Name) })
	for _, d := range recent {
		if (source == "" || d.Source == source) && len(v.Deliveries) < eventsShown {
			v.Deliveries = append(v.Deliveries, d)
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	stored, err := c.recentStored(ctx, source)
	if err != nil {
		v.Error = "Stored events could not be read: " + err.Error()
	}
	v.Stored = stored
	c.render(w, r, http.StatusOK, "webhooks", v)
}

// recentStored reads the newest stored events of a source (all sources
// when empty) from the WEBHOOKS stream, newest first.
func (c *Console) recentStored(ctx context.Context, source string) ([]storedEvent, error) {
	st, err := c.js.Stream(ctx, bus.StreamWebhooks)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	prefix := ""
	if source != "" {
		prefix = strings.TrimSuffix(bus.WebhookSubject(source, "x"), "x")
	}
	var out []storedEvent
	for seq, scanned := info.State.LastSeq, 0; seq >= info.State.FirstSeq && seq > 0 && scanned < eventsScanned && len(out) < eventsShown; seq, scanned = seq-1, scanned+1 {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return out, err
		}
		if !strings.HasPrefix(m.Subject, prefix) {
			continue
		}
		ev := &toolbusv1.WebhookEvent{}
		if proto.Unmarshal(m.Data, ev) != nil {
			continue
		}
		se := storedEvent{Seq: seq, Source: ev.Source, Type: ev.Type, ID: ev.Id, Size: len(ev.Body)}
		if ev.ReceivedAt != nil {
			se.ReceivedAt = ev.ReceivedAt.AsTime()
		}
		out = append(out, se)
	}
	return out, nil
}

type webhookView struct {
	Seq         uint64
	Subject     string
	Event       *eventPayload
	Projections []string
}

func (c *Console) webhookPage(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		c.refuse(w, r, http.StatusNotFound, "No such event.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	st, err := c.js.Stream(ctx, bus.StreamWebhooks)
	var m *jetstream.RawStreamMsg
	if err == nil {
		m, err = st.GetMsg(ctx, seq)
	}
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		c.refuse(w, r, http.StatusNotFound, fmt.Sprintf("Event %d is not in the WEBHOOKS stream (expired?).", seq))
		return
	case err != nil:
		c.refuse(w, r, http.StatusBadGateway, "The event could not be read: "+err.Error())
		return
	}
	ev := &toolbusv1.WebhookEvent{}
	if err := proto.Unmarshal(m.Data, ev); err != nil {
		c.refuse(w, r, http.StatusUnprocessableEntity, "The stored event could not be decoded.")
		return
	}
	v := &webhookView{Seq: seq, Subject: m.Subject, Event: eventView(ev)}
	for name, p := range c.catalog().Projections {
		if p.FedBy(ev.Source) {
			v.Projections = append(v.Projections, name)
		}
	}
	slices.Sort(v.Projections)
	c.render(w, r, http.StatusOK, "webhook", v)
}

type webhookReplayView struct {
	Source string
	Since  string
	Stats  webhookcli.ReplayStats
}

// webhookReplaySubmit re-applies a source's stored events (from a time) to
// its projections, as `toolbus webhooks replay` does.
func (c *Console) webhookReplaySubmit(w http.ResponseWriter, r *http.Request) {
	source := r.PostFormValue("source")
	if _, ok := c.catalog().Sources[source]; !ok {
		c.refuse(w, r, http.StatusBadRequest, "Choose a source declared in the catalog.")
		return
	}
	sinceText := strings.TrimSpace(r.PostFormValue("since"))
	var since time.Time
	if sinceText != "" {
		if d, err := time.ParseDuration(sinceText); err == nil && d > 0 {
			since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, sinceText); err == nil {
			since = t
		} else {
			c.refuse(w, r, http.StatusBadRequest, "Since must be a duration such as 24h or an RFC 3339 time.")
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	st, err := webhookcli.Replay(ctx, c.js, webhookcli.ReplayOptions{Catalog: c.catalog(), Source: source, Since: since, Logger: c.log})
	if err != nil {
		c.refuse(w, r, http.StatusBadGateway, "Replay failed: "+err.Error())
		return
	}
	c.log.Info("console replayed webhook events", "who", principalFrom(r.Context()).who, "source", source, "since", sinceText, "events", st.Events)
	c.render(w, r, http.StatusOK, "webhookreplay", &webhookReplayView{Source: source, Since: sinceText, Stats: st})
}
