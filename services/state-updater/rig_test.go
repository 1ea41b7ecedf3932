package stateupdater_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/projection"
	stateupdater "github.com/toolbus/toolbus/services/state-updater"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var secrets = map[string]string{"STRIPE_SECRET": "whsec_test", "GITHUB_SECRET": "gh-secret"}

const testCatalog = `
version: 1
sources:
  stripe: {scheme: stripe, secrets: ["${env:STRIPE_SECRET}"]}
  github: {scheme: github, secrets: ["${env:GITHUB_SECRET}"]}
projections:
  payments:
    sources: [stripe]
    events: ["payment_intent.*", "customer.deleted"]
    key: data.object.customer
    fields: {amount: data.object.amount, status: data.object.status, payment: data.object.id}
    version: created
    delete_when: {events: [customer.deleted]}
    history: 3
  open_prs:
    sources: [github]
    events: [pull_request]
    key: "{repository.full_name}#{pull_request.number}"
    fields: {title: pull_request.title, author: pull_request.user.login}
    version: pull_request.updated_at
    delete_when: {path: action, value: closed}
`

func loadCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.Parse("test.yaml", []byte(testCatalog), catalog.WithLookupEnv(func(n string) (string, bool) {
		v, ok := secrets[n]
		return v, ok
	}))
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

type busRig struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	cat *catalog.Catalog
}

func newBus(t testing.TB) *busRig {
	t.Helper()
	ns := bustest.Server(t)
	nc, js := bustest.Connect(t, ns)
	return &busRig{nc: nc, js: js, cat: loadCatalog(t)}
}

func (b *busRig) start(t testing.TB, instance string) *stateupdater.Service {
	t.Helper()
	svc, err := stateupdater.New(stateupdater.Options{Catalog: b.cat, NC: b.nc, JS: b.js, Instance: instance, Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, svc) })
	return svc
}

func stop(t testing.TB, svc *stateupdater.Service) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := svc.Shutdown(ctx); err != nil {
		t.Error(err)
	}
}

// event is a stored webhook event; msgID defaults to id (a redelivery past
// the dedup window gets another msgID).
type event struct {
	source, id, typ, body, msgID string
}

func (b *busRig) publish(t testing.TB, evs ...event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, e := range evs {
		data, err := proto.Marshal(&toolbusv1.WebhookEvent{Id: e.id, Source: e.source, Type: e.typ, Body: []byte(e.body),
			ReceivedAt: timestamppb.New(time.Unix(1700000000, 0)), Scheme: e.source})
		if err != nil {
			t.Fatal(err)
		}
		msg := &nats.Msg{Subject: bus.WebhookSubject(e.source, e.typ), Data: data, Header: nats.Header{}}
		msgID := e.msgID
		if msgID == "" {
			msgID = e.id
		}
		msg.Header.Set(bus.HeaderMsgID, msgID)
		if _, err := b.js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
}

// waitIdle waits until every projection consumer has acknowledged every
// event stored so far.
func (b *busRig) waitIdle(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for name := range b.cat.Projections {
		for {
			c, err := b.js.Consumer(ctx, bus.StreamWebhooks, stateupdater.ConsumerName(name))
			if err != nil {
				t.Fatal(err)
			}
			info, err := c.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.NumPending == 0 && info.NumAckPending == 0 {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("consumer %s not idle: %+v", name, info)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// state reads every entity of every projection (tombstones included).
func (b *busRig) state(t testing.TB) map[string][]*projection.Entity {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := projection.NewReader(b.js, b.cat)
	out := map[string][]*projection.Entity{}
	for name := range b.cat.Projections {
		all, err := r.All(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range all {
			e.Revision = 0 // differs between buckets written in another order
			e.Trace = nil  // names the delivery that wrote it, not state
		}
		out[name] = all
	}
	return out
}

func pay(id, customer string, created, amount int) event {
	return event{source: "stripe", id: id, typ: "payment_intent.succeeded",
		body: fmt.Sprintf(`{"id":%q,"type":"payment_intent.succeeded","created":%d,"data":{"object":{"id":"pi_%s","customer":%q,"amount":%d,"status":"succeeded"}}}`, id, created, id, customer, amount)}
}

func deleteCustomer(id, customer string, created int) event {
	return event{source: "stripe", id: id, typ: "customer.deleted",
		body: fmt.Sprintf(`{"id":%q,"type":"customer.deleted","created":%d,"data":{"object":{"id":%q,"customer":%q}}}`, id, created, customer, customer)}
}

func pr(id, action string, number int, updated string) event {
	return event{source: "github", id: id, typ: "pull_request",
		body: fmt.Sprintf(`{"action":%q,"number":%d,"repository":{"full_name":"acme/app"},"pull_request":{"number":%d,"title":"PR %d","state":"open","updated_at":%q,"user":{"login":"ann"}}}`, action, number, number, number, updated)}
}
