package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
	webhookingest "github.com/toolbus/toolbus/services/webhook-ingest"
)

const (
	sourcesV1 = `version: 1
sources:
  stripe: {scheme: stripe, secrets: ["${env:RELOAD_STRIPE_SECRET}"]}
`
	sourcesV2 = sourcesV1 + `  gh: {scheme: github, secrets: ["${env:RELOAD_GITHUB_SECRET}"]}
`
)

// TestHotReloadWebhookSources is the all-in-one's file reload reaching
// webhook-ingest: a source added to the catalog file is received without
// a restart.
func TestHotReloadWebhookSources(t *testing.T) {
	t.Setenv("RELOAD_STRIPE_SECRET", "whsec_reload_stripe")
	t.Setenv("RELOAD_GITHUB_SECRET", "reload-github-secret")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := newFileRig(t, ctx, sourcesV1)
	ingest, err := webhookingest.New(webhookingest.Options{Catalog: f.cat, NC: f.nc, JS: f.js, Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	startServices(t, ctx, ingest)
	srv := httptest.NewServer(ingest.Handler())
	t.Cleanup(srv.Close)
	f.reload(ctx, ingest)

	next, err := catalog.Parse("v2.yaml", []byte(sourcesV2))
	if err != nil {
		t.Fatal(err)
	}
	scheme, err := next.Sources["gh"].Verifier()
	if err != nil {
		t.Fatal(err)
	}
	deliver := func(id string) int {
		t.Helper()
		body := []byte(`{"zen":"Design for failure."}`)
		h, err := scheme.Sign(body, time.Now(), id, "ping")
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/webhooks/gh", bytes.NewReader(body))
		req.Header = h
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := deliver("d-before"); got != http.StatusNotFound {
		t.Fatalf("a source not in the catalog answered %d, want 404", got)
	}

	f.write(sourcesV2)
	for {
		got := deliver("d-after")
		if got == http.StatusAccepted {
			break
		}
		if got != http.StatusNotFound || ctx.Err() != nil {
			t.Fatalf("the source added to the catalog file answered %d, want 202 once reloaded", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
