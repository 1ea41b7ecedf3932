// Package webhookcli provides the work behind `toolbus webhooks replay`
// and `toolbus webhooks send`: rebuilding projections from the stored
// events, and posting signed sample deliveries to a running Toolbus.
//
// It must not parse flags, print or exit: cmd/toolbus owns the command line.
package webhookcli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"google.golang.org/protobuf/proto"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/projection"
)

// ReplayUsage is the help text of `toolbus webhooks replay`.
const ReplayUsage = `Usage: toolbus webhooks replay --source S [--since T] [--reset] [--projection P]...

Re-applies the events of source S stored on the WEBHOOKS stream (kept 7 days)
to every projection the source feeds, from time T (RFC 3339 or a duration
such as 24h, meaning "that long ago"; default: the oldest stored event).

Applying is idempotent and ordered by each event's version, so replaying
while the state-updater runs is safe and changes nothing that is already
up to date. --reset first empties the projections' buckets, to rebuild them
after a projection definition changed (use it without --since).
`

// ReplayOptions configure Replay.
type ReplayOptions struct {
	Catalog *catalog.Catalog
	// Source whose events are replayed.
	Source string
	// Since is the earliest receive time replayed; zero means all.
	Since time.Time
	// Projections restricts the projections rebuilt (default: all that the
	// source feeds).
	Projections []string
	// Reset deletes and recreates the projections' buckets first.
	Reset bool
	// Buckets shapes recreated buckets.
	Buckets projection.BucketOptions
	Logger  *slog.Logger
}

// ReplayStats counts what Replay did.
type ReplayStats struct {
	Events  int
	Applied int
	// Unchanged counts events that were duplicates, older than the stored
	// state, or not taken by any projection.
	Unchanged int
	// Poison counts events no projection could apply (they were
	// dead-lettered when first consumed).
	Poison int
}

// Replay re-applies the source's stored events with the same rules as the
// state-updater (projection.Applier), reading them with an ordered
// consumer of its own. It does not touch the state-updater's durable
// consumers, so it needs no coordination with running replicas; and since
// application is idempotent and monotonic, the result is the state a fresh
// consumption would give.
func Replay(ctx context.Context, js jetstream.JetStream, o ReplayOptions) (ReplayStats, error) {
	var st ReplayStats
	if o.Catalog == nil {
		return st, errors.New("replay: no catalog")
	}
	src, ok := o.Catalog.Sources[o.Source]
	if !ok {
		return st, fmt.Errorf("replay: source %q is not in the catalog", o.Source)
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	var projs []*catalog.Projection
	for name, p := range o.Catalog.Projections {
		if p.FedBy(src.Name) && (len(o.Projections) == 0 || slices.Contains(o.Projections, name)) {
			projs = append(projs, p)
		}
	}
	for _, name := range o.Projections {
		if p, ok := o.Catalog.Projections[name]; !ok || !p.FedBy(src.Name) {
			return st, fmt.Errorf("replay: projection %q is not fed by source %s", name, src.Name)
		}
	}
	slices.SortFunc(projs, func(a, b *catalog.Projection) int { return strings.Compare(a.Name, b.Name) })
	for _, p := range projs {
		if o.Reset {
			if err := js.DeleteKeyValue(ctx, projection.Bucket(p.Name)); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
				return st, fmt.Errorf("replay: reset %s: %w", p.Name, err)
			}
		}
		if _, err := js.CreateOrUpdateKeyValue(ctx, projection.BucketConfig(p, o.Buckets)); err != nil {
			return st, fmt.Errorf("replay: bucket %s: %w", p.Name, err)
		}
	}

	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{strings.TrimSuffix(bus.WebhookSubject(src.Name, "x"), "x") + ">"},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if !o.Since.IsZero() {
		since := o.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	stream, err := js.Stream(ctx, bus.StreamWebhooks)
	if err != nil {
		return st, fmt.Errorf("replay: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("replay: %w", err)
	}
	// Events stored after this point are the state-updater's business.
	last := info.State.LastSeq
	cons, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return st, fmt.Errorf("replay: %w", err)
	}
	applier := projection.NewApplier(js)
	for {
		msg, err := cons.Next(jetstream.FetchContext(withShortWait(ctx)))
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return st, nil // nothing more to read
		}
		if err != nil {
			return st, fmt.Errorf("replay: read: %w", err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return st, fmt.Errorf("replay: %w", err)
		}
		if md.Sequence.Stream > last {
			return st, nil
		}
		st.Events++
		var ev toolbusv1.WebhookEvent
		if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
			st.Poison++
			continue
		}
		pev := projection.Event{ID: ev.Id, Source: ev.Source, Type: ev.Type, Body: ev.Body, ReceivedAt: ev.ReceivedAt.AsTime(), Sequence: md.Sequence.Stream}
		applied, poison := false, false
		for _, p := range projs {
			out, err := applier.Apply(ctx, p, pev)
			switch {
			case errors.Is(err, projection.ErrPoison):
				poison = true
				log.Debug("replay: poison event", "projection", p.Name, "seq", md.Sequence.Stream, "reason", err)
			case err != nil:
				return st, fmt.Errorf("replay: event %s (seq %d): %w", ev.Id, md.Sequence.Stream, err)
			case out == projection.Applied:
				applied = true
			}
		}
		switch {
		case applied:
			st.Applied++
		case poison:
			st.Poison++
		default:
			st.Unchanged++
		}
		if md.NumPending == 0 {
			return st, nil
		}
	}
}

// withShortWait bounds one read: when the filtered stream holds nothing
// (more), Next waits this long before Replay concludes it is done.
func withShortWait(ctx context.Context) context.Context {
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	context.AfterFunc(c, cancel)
	return c
}

// SendUsage is the help text of `toolbus webhooks send`.
const SendUsage = `Usage: toolbus webhooks send --source S --file event.json [--type T] [--url http://127.0.0.1:8080]

Signs the JSON payload in event.json with source S's scheme and first secret
from the catalog, as the provider would, and posts it to
<url>/webhooks/S on a running Toolbus. Schemes that carry the event type in a
header (github, shopify, hmac with type_header) take it from --type; a fresh
delivery id is generated where the scheme carries one in a header. Prints
the HTTP status: 202 stored, 200 already stored (duplicate), 401 signature
refused, 413 too large, 503 bus unavailable (retry).
`

// Send signs body with the source's scheme and first secret and posts it
// to baseURL/webhooks/<source>. The caller closes the response body.
func Send(ctx context.Context, baseURL string, src *catalog.Source, body []byte, eventType string) (*http.Response, error) {
	sch, err := src.Verifier()
	if err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	h, err := sch.Sign(body, time.Now(), nuid.Next(), eventType)
	if err != nil {
		return nil, fmt.Errorf("send: sign: %w", err)
	}
	url := strings.TrimSuffix(baseURL, "/") + "/webhooks/" + src.Name
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "toolbus-webhooks-send")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	return resp, nil
}
