package main

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/bus"
)

// --webhook-dedup-window sets the WEBHOOKS stream's deduplication window,
// which JetStream holds in memory (docs/webhooks.md).
func TestWebhookDedupWindow(t *testing.T) {
	a := serveInProcessWith(t, testCatalog(t, "http://127.0.0.1:1"), "none", func(c *serveConfig) {
		c.natsListen = "127.0.0.1:0"
		c.rel.webhookDedup = 90 * time.Minute
	})
	nc, err := nats.Connect(a.nats)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, bus.StreamWebhooks)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.Duplicates; got != 90*time.Minute {
		t.Errorf("WEBHOOKS dedup window = %v, want 1h30m0s", got)
	}
}

func TestWebhookDedupWindowBounds(t *testing.T) {
	for _, v := range []string{"0s", "500ms", "8d", "169h"} {
		err := runServe(context.Background(), []string{"--webhook-dedup-window", v}, nil, io.Discard, io.Discard)
		if !errors.As(err, new(usageError)) {
			t.Errorf("--webhook-dedup-window %s: %v, want a usage error", v, err)
		}
	}
}
