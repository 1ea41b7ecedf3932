package projection_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/projection"
	"github.com/toolbus/toolbus/projection/projectiontest"
)

const notifyCatalog = `
version: 1
sources:
  stripe: {scheme: stripe, secrets: ["${env:STRIPE_SECRET}"]}
  github: {scheme: github, secrets: ["${env:GITHUB_SECRET}"]}
projections:
  payments:
    sources: [stripe]
    events: ["payment_intent.*"]
    key: data.object.customer
    fields: {amount: data.object.amount}
  open_prs:
    sources: [github]
    events: [pull_request]
    key: "{repository.full_name}#{pull_request.number}"
    fields: {title: pull_request.title}
`

// TestNotifyReady: Ready comes once every projection whose bucket exists is
// watched, without waiting for a bucket that does not exist yet; a change
// written right after Ready reaches a subscribed client; a bucket created
// later is watched too.
func TestNotifyReady(t *testing.T) {
	cat, err := catalog.Parse("notify.yaml", []byte(notifyCatalog), catalog.WithLookupEnv(func(string) (string, bool) { return "s3cret", true }))
	if err != nil {
		t.Fatal(err)
	}
	ns := bustest.Server(t)
	_, js := bustest.Connect(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kv, err := js.CreateOrUpdateKeyValue(ctx, projection.BucketConfig(cat.Projections["payments"], projection.BucketOptions{}))
	if err != nil {
		t.Fatal(err)
	}

	reader := projection.NewReader(js, cat)
	srv := projectiontest.Server(reader, cat)
	cs := projectiontest.ConnectInMemory(t, ctx, srv)
	uri := projection.EntityURI("payments", "cus_1")
	if err := cs.Subscribe(ctx, uri); err != nil {
		t.Fatal(err)
	}

	var (
		mu             sync.Mutex
		watched        []string
		watchedAtReady []string
		readyCalls     int
	)
	ready := make(chan struct{})
	watching := make(chan string, 8)
	nctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	wg.Go(func() {
		_ = projection.NotifyWith(nctx, srv, reader, cat, projection.NotifyOptions{
			Logger: bustest.Logger(),
			Watching: func(p string) {
				mu.Lock()
				watched = append(watched, p)
				mu.Unlock()
				watching <- p
			},
			Ready: func() {
				mu.Lock()
				readyCalls++
				watchedAtReady = slices.Clone(watched)
				mu.Unlock()
				close(ready)
			},
		})
	})
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatal("Ready was not called although the only existing bucket can be watched")
	}
	mu.Lock()
	if !slices.Contains(watchedAtReady, "payments") || slices.Contains(watchedAtReady, "open_prs") {
		t.Errorf("projections watched when Ready was called: %q, want payments (and not open_prs, whose bucket does not exist)", watchedAtReady)
	}
	mu.Unlock()

	if _, err := kv.Put(ctx, projection.EncodeKey("cus_1"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-cs.Updated:
		if got != uri {
			t.Errorf("notified of %s, want %s", got, uri)
		}
	case <-time.After(30 * time.Second): // "eventually"
		t.Fatal("a change written right after Ready was not notified")
	}

	if _, err := js.CreateOrUpdateKeyValue(ctx, projection.BucketConfig(cat.Projections["open_prs"], projection.BucketOptions{})); err != nil {
		t.Fatal(err)
	}
	for p := ""; p != "open_prs"; {
		select {
		case p = <-watching:
		case <-time.After(30 * time.Second):
			t.Fatal("a bucket created after the start was never watched")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if readyCalls != 1 {
		t.Errorf("Ready called %d times, want once", readyCalls)
	}
}
