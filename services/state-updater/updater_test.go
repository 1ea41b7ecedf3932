package stateupdater_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/toolbus/toolbus/bus"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/projection"
	stateupdater "github.com/toolbus/toolbus/services/state-updater"
	"github.com/toolbus/toolbus/webhookcli"
)

// summary is what the rules decide about an entity.
type summary struct {
	Value   any
	Version string
	EventID string
	Deleted bool
	History []string
}

func summarize(es []*projection.Entity) map[string]summary {
	out := map[string]summary{}
	for _, e := range es {
		s := summary{Value: e.Value, Version: e.Version, EventID: e.EventID, Deleted: e.Deleted}
		for _, h := range e.History {
			s.History = append(s.History, h.EventID)
		}
		out[e.Key] = s
	}
	return out
}

func num(n int) json.Number { return json.Number(fmt.Sprint(n)) }

func payment(id string, amount int) map[string]any {
	return map[string]any{"amount": num(amount), "status": "succeeded", "payment": "pi_" + id}
}

// TestProjectionRules: out-of-order, duplicate, delete and poison events
// give the right final state, and poison events do not block the others.
func TestProjectionRules(t *testing.T) {
	b := newBus(t)
	b.start(t, "one")
	dup := pay("evt_a1", "cus_A", 100, 10)
	dup.msgID = "redelivered-after-dedup-window"
	b.publish(t,
		// cus_A: newest first, then an older one, then a duplicate.
		pay("evt_a3", "cus_A", 300, 30),
		pay("evt_a1", "cus_A", 100, 10),
		pay("evt_a2", "cus_A", 200, 20),
		dup,
		// cus_B: deleted, then an older update arrives late.
		pay("evt_b1", "cus_B", 100, 5),
		deleteCustomer("evt_b2", "cus_B", 200),
		pay("evt_b0", "cus_B", 150, 7),
		// Poison: not JSON, and no key.
		event{source: "stripe", id: "evt_bad", typ: "payment_intent.created", body: `{not json`},
		event{source: "stripe", id: "evt_nokey", typ: "payment_intent.created", body: `{"created":1,"data":{"object":{}}}`},
		// Not taken by the projection.
		event{source: "stripe", id: "evt_other", typ: "charge.succeeded", body: `{"created":1}`},
		// cus_C after the poison events.
		pay("evt_c1", "cus_C", 100, 1),
		// cus_D: deleted, then recreated by a newer event.
		pay("evt_d1", "cus_D", 100, 1),
		deleteCustomer("evt_d2", "cus_D", 200),
		pay("evt_d3", "cus_D", 300, 3),
		// A pull request opened, edited, closed.
		pr("gh1", "opened", 7, "2024-05-01T10:00:00Z"),
		pr("gh3", "closed", 7, "2024-05-01T12:00:00Z"),
		pr("gh2", "edited", 7, "2024-05-01T11:00:00Z"),
		pr("gh4", "opened", 8, "2024-05-02T10:00:00Z"),
	)
	b.waitIdle(t)

	got := map[string]map[string]summary{}
	for name, es := range b.state(t) {
		got[name] = summarize(es)
	}
	want := map[string]map[string]summary{
		"payments": {
			"cus_A": {Value: payment("evt_a3", 30), Version: "300", EventID: "evt_a3", History: []string{"evt_a1", "evt_a2", "evt_a3"}},
			"cus_B": {Version: "200", EventID: "evt_b2", Deleted: true, History: []string{"evt_b1", "evt_b0", "evt_b2"}},
			"cus_C": {Value: payment("evt_c1", 1), Version: "100", EventID: "evt_c1", History: []string{"evt_c1"}},
			"cus_D": {Value: payment("evt_d3", 3), Version: "300", EventID: "evt_d3", History: []string{"evt_d1", "evt_d2", "evt_d3"}},
		},
		"open_prs": {
			"acme/app#7": {Version: "2024-05-01T12:00:00Z", EventID: "gh3", Deleted: true, History: []string{"gh1", "gh2", "gh3"}},
			"acme/app#8": {Value: map[string]any{"title": "PR 8", "author": "ann"}, Version: "2024-05-02T10:00:00Z", EventID: "gh4", History: []string{"gh4"}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}

	if diff := cmp.Diff([]string{"payments: undecodable", "payments: key data.object.customer"}, deadLetters(t, b.js)); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
}

// deadLetters lists "<handler projection>: <reason prefix>" of every dead letter.
func deadLetters(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, bus.StreamDeadLetters, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for {
		msg, err := c.Next(jetstream.FetchMaxWait(300 * time.Millisecond))
		if err != nil {
			return out
		}
		var dl toolbusv1.DeadLetter
		if err := proto.Unmarshal(msg.Data(), &dl); err != nil {
			t.Fatal(err)
		}
		reason := dl.Reason
		if len(reason) > 24 {
			reason = reason[:24]
		}
		if dl.Reason[:4] == "body" {
			reason = "undecodable"
		}
		out = append(out, dl.Handler[len("state-"):]+": "+reason)
		if dl.Kind != "webhook" || dl.Stream != bus.StreamWebhooks || dl.StreamSequence == 0 || len(dl.Payload) == 0 {
			t.Errorf("dead letter lacks its origin: %+v", &dl)
		}
	}
}

// manyEvents is a shuffled history of 20 customers with 8 versions each,
// deletes, and duplicates: enough for replicas to race on the same keys.
func manyEvents() []event {
	rng := rand.New(rand.NewPCG(1, 2))
	var evs []event
	for c := range 20 {
		cus := fmt.Sprintf("cus_%02d", c)
		for v := 1; v <= 8; v++ {
			id := fmt.Sprintf("evt_%02d_%d", c, v)
			if c%5 == 0 && v == 6 {
				evs = append(evs, deleteCustomer(id, cus, v*100))
				continue
			}
			evs = append(evs, pay(id, cus, v*100, c*10+v))
		}
	}
	rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	for i := range 15 { // redeliveries past the dedup window
		d := evs[i*7]
		d.msgID = "again-" + d.id
		evs = append(evs, d)
	}
	return evs
}

// TestReplayGivesSameState: deleting the buckets and consuming the stream
// from the start again, or running the replay command, gives the same
// state; so do two replicas plus a concurrent replay racing on the same
// entities.
func TestReplayGivesSameState(t *testing.T) {
	evs := manyEvents()

	single := newBus(t)
	single.publish(t, evs...)
	svc := single.start(t, "one")
	single.waitIdle(t)
	want := single.state(t)
	if len(want["payments"]) != 20 {
		t.Fatalf("want 20 customers, got %d", len(want["payments"]))
	}

	t.Run("consume again from the start", func(t *testing.T) {
		stop(t, svc)
		ctx := context.Background()
		for name := range single.cat.Projections {
			if err := single.js.DeleteKeyValue(ctx, projection.Bucket(name)); err != nil {
				t.Fatal(err)
			}
			if err := single.js.DeleteConsumer(ctx, bus.StreamWebhooks, stateupdater.ConsumerName(name)); err != nil {
				t.Fatal(err)
			}
		}
		single.start(t, "again")
		single.waitIdle(t)
		if diff := cmp.Diff(want, single.state(t)); diff != "" {
			t.Errorf("state after re-consuming (-first +again):\n%s", diff)
		}
	})

	t.Run("replay command with reset", func(t *testing.T) {
		st, err := webhookcli.Replay(context.Background(), single.js, webhookcli.ReplayOptions{Catalog: single.cat, Source: "stripe", Reset: true})
		if err != nil {
			t.Fatal(err)
		}
		if st.Events != len(evs) {
			t.Errorf("replayed %d events, want %d (%+v)", st.Events, len(evs), st)
		}
		got := single.state(t)
		if diff := cmp.Diff(want["payments"], got["payments"]); diff != "" {
			t.Errorf("state after replay (-first +replayed):\n%s", diff)
		}
	})

	t.Run("two replicas and a replay at once", func(t *testing.T) {
		b := newBus(t)
		b.start(t, "a")
		b.start(t, "b")
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; i < len(evs); i += 10 {
				b.publish(t, evs[i:min(i+10, len(evs))]...)
			}
		})
		wg.Go(func() {
			for range 3 {
				if _, err := webhookcli.Replay(context.Background(), b.js, webhookcli.ReplayOptions{Catalog: b.cat, Source: "stripe"}); err != nil {
					t.Error(err)
				}
			}
		})
		wg.Wait()
		b.waitIdle(t)
		got := b.state(t)
		if diff := cmp.Diff(want["payments"], got["payments"]); diff != "" {
			t.Errorf("state with two replicas (-single +replicas):\n%s", diff)
		}
	})
}
