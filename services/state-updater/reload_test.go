package stateupdater_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/projection"
	stateupdater "github.com/toolbus/toolbus/services/state-updater"
)

const reloadSources = `
version: 1
sources:
  stripe: {scheme: stripe, secrets: ["${env:STRIPE_SECRET}"]}
  github: {scheme: github, secrets: ["${env:GITHUB_SECRET}"]}
  gh2: {scheme: github, secrets: ["${env:GITHUB_SECRET}"]}
projections:
`

const (
	paymentsV1 = `  payments:
    sources: [stripe]
    events: ["payment_intent.*"]
    key: data.object.customer
    fields: {amount: data.object.amount}
    version: created
`
	paymentsV2 = `  payments:
    sources: [stripe]
    events: ["payment_intent.*"]
    key: data.object.customer
    fields: {amount: data.object.amount, status: data.object.status}
    version: created
`
	openPRs = `  open_prs:
    sources: [github]
    events: [pull_request]
    key: "{repository.full_name}#{pull_request.number}"
    fields: {title: pull_request.title}
`
	openPRsTwoSources = `  open_prs:
    sources: [github, gh2]
    events: [pull_request]
    key: "{repository.full_name}#{pull_request.number}"
    fields: {title: pull_request.title}
`
)

func parseProjections(t *testing.T, projections ...string) *catalog.Catalog {
	t.Helper()
	src := reloadSources
	for _, p := range projections {
		src += p
	}
	cat, err := catalog.Parse("reload.yaml", []byte(src), catalog.WithLookupEnv(func(n string) (string, bool) {
		v, ok := secrets[n]
		return v, ok
	}))
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// TestReloadProjections: a projection added by a reload is built from the
// events already stored; a changed one applies its new definition to the
// next event, and a source added to it is consumed; a removed one is no
// longer applied, its events waiting in its durable consumer.
func TestReloadProjections(t *testing.T) {
	b := newBus(t)
	b.cat = parseProjections(t, paymentsV1)
	svc := b.start(t, "one")
	b.publish(t, pay("evt_1", "cus_1", 100, 10), pr("gh_1", "opened", 7, "2024-05-01T10:00:00Z"))
	b.waitIdle(t)
	if got := summarize(b.state(t)["payments"])["cus_1"].Value; !cmp.Equal(got, map[string]any{"amount": num(10)}) {
		t.Fatalf("payments before the reload: %v", got)
	}

	// Added: open_prs, built from the pull request stored before.
	// Changed: payments keeps status too.
	b.cat = parseProjections(t, paymentsV2, openPRs)
	if err := svc.Reload(b.cat); err != nil {
		t.Fatal(err)
	}
	b.publish(t, pay("evt_2", "cus_1", 200, 20))
	b.waitIdle(t)
	st := b.state(t)
	if got, want := summarize(st["payments"])["cus_1"].Value, map[string]any{"amount": num(20), "status": "succeeded"}; !cmp.Equal(got, want) {
		t.Errorf("payments after the reload: %v, want %v (the new fields)", got, want)
	}
	if got := summarize(st["open_prs"]); got["acme/app#7"].EventID != "gh_1" {
		t.Errorf("open_prs added by the reload: %v, want acme/app#7 from the event stored before", got)
	}

	// A source added to open_prs: its consumer's filter follows.
	b.cat = parseProjections(t, paymentsV2, openPRsTwoSources)
	if err := svc.Reload(b.cat); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := b.js.Consumer(ctx, bus.StreamWebhooks, stateupdater.ConsumerName("open_prs"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := stateupdater.FilterSubjects(b.cat.Projections["open_prs"]); !slices.Equal(info.Config.FilterSubjects, want) {
		t.Errorf("open_prs consumer filter %q, want %q", info.Config.FilterSubjects, want)
	}
	gh2 := pr("gh2_1", "opened", 8, "2024-05-02T10:00:00Z")
	gh2.source = "gh2"
	b.publish(t, gh2)
	b.waitIdle(t)
	if got := summarize(b.state(t)["open_prs"]); got["acme/app#8"].EventID != "gh2_1" {
		t.Errorf("open_prs after adding source gh2: %v, want acme/app#8", got)
	}

	// Removed: payments is no longer applied; its event waits.
	withPayments := b.cat
	b.cat = parseProjections(t, openPRsTwoSources)
	if err := svc.Reload(b.cat); err != nil {
		t.Fatal(err)
	}
	b.publish(t, pay("evt_3", "cus_1", 300, 30))
	b.waitIdle(t) // open_prs only
	pcons, err := b.js.Consumer(ctx, bus.StreamWebhooks, stateupdater.ConsumerName("payments"))
	if err != nil {
		t.Fatal(err)
	}
	// Give an (erroneous) application time to happen before looking. The
	// server may still hand the event to the drained subscription's last
	// pull (then it waits unacknowledged): either way it is waiting, and
	// the entity keeps the event before it.
	time.Sleep(300 * time.Millisecond)
	pinfo, err := pcons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if waiting := pinfo.NumPending + uint64(pinfo.NumAckPending); waiting != 1 {
		t.Errorf("removed projection's consumer: %d pending, %d delivered unacknowledged; want the new event waiting", pinfo.NumPending, pinfo.NumAckPending)
	}
	e, err := projection.NewReader(b.js, withPayments).Get(ctx, "payments", "cus_1")
	if err != nil {
		t.Fatal(err)
	}
	if e.EventID != "evt_2" {
		t.Errorf("the removed projection applied %s, want its entity left at evt_2", e.EventID)
	}
	if err := svc.Reload(nil); err == nil {
		t.Error("a nil catalog was reloaded")
	}
}
