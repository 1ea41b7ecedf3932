package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/toolbus/toolbus/bus"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/signature"
)

const webhookSecret = "whsec_e2e_durability_secret"

func webhookCatalog(t *testing.T) string {
	t.Helper()
	src := `version: 1
sources:
  stripe:
    scheme: stripe
    secrets: ["${env:E2E_STRIPE_SECRET}"]
projections:
  payments:
    sources: [stripe]
    events: ["payment_intent.*"]
    key: data.object.id
    version: created
`
	path := filepath.Join(t.TempDir(), "webhooks.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestWebhookDurabilityUnderCrashes sends signed events while the ingest
// process is killed with SIGKILL and restarted, and while the NATS server is
// stopped and restarted. The sender retries every event until it gets a 2xx,
// as providers do. Every event must end up stored exactly once.
func TestWebhookDurabilityUnderCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts processes")
	}
	bin := toolbusBin(t)
	natsPort, httpPort := freePort(t), freePort(t)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	natsDir := t.TempDir()
	startNATS := func() *proc {
		return startProc(t, "nats-server", natsServerBin(t), "-js", "-sd", natsDir, "-a", "127.0.0.1", "-p", strconv.Itoa(natsPort))
	}
	natsProc := startNATS()
	catalogPath := webhookCatalog(t)
	startIngest := func() *proc {
		p := startProcEnv(t, "webhook-ingest", []string{"E2E_STRIPE_SECRET=" + webhookSecret}, bin,
			"serve", "--catalog", catalogPath, "--services", "webhook-ingest,state-updater", "--nats", natsURL,
			"--http", fmt.Sprintf("127.0.0.1:%d", httpPort), "--grpc", "none", "--log-level", "info")
		p.waitLog(t, "toolbus ready", 30*time.Second)
		return p
	}
	ingest := startIngest()

	scheme, err := signature.New(signature.Config{Scheme: "stripe", Secrets: signature.Secrets{webhookSecret}})
	if err != nil {
		t.Fatal(err)
	}
	const events = 240
	var accepted atomic.Int64 // events that got their 2xx
	var refused atomic.Int64  // non-2xx answers or transport errors, retried
	client := &http.Client{Timeout: 5 * time.Second}
	send := func(i int) error {
		id := fmt.Sprintf("evt_%04d", i)
		body := fmt.Appendf(nil, `{"id":%q,"type":"payment_intent.succeeded","created":%d,"data":{"object":{"id":"pi_%d","amount":%d}}}`, id, 1700000000+i, i%20, i)
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			h, err := scheme.Sign(body, time.Now(), id, "payment_intent.succeeded")
			if err != nil {
				return err
			}
			req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/webhooks/stripe", httpPort), bytes.NewReader(body))
			req.Header = h
			req.Header.Set("Content-Type", "application/json")
			res, err := client.Do(req)
			if err == nil {
				res.Body.Close()
				if res.StatusCode/100 == 2 {
					accepted.Add(1)
					return nil
				}
				if res.StatusCode/100 == 4 {
					return fmt.Errorf("event %s refused with %s: a provider would drop it", id, res.Status)
				}
			}
			refused.Add(1)
			time.Sleep(50 * time.Millisecond)
		}
		return fmt.Errorf("event %s never accepted", id)
	}

	next := make(chan int)
	errs := make(chan error, events)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range next {
				errs <- send(i)
			}
		})
	}
	for i := range events {
		switch i {
		case 60:
			_ = ingest.cmd.Process.Kill() // SIGKILL: no graceful anything
			_ = ingest.wait(t, 10*time.Second)
			ingest = startIngest()
		case 150:
			_ = natsProc.cmd.Process.Signal(syscall.SIGKILL)
			_ = natsProc.wait(t, 10*time.Second)
			time.Sleep(300 * time.Millisecond)
			natsProc = startNATS()
		}
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}

	// Count what the stream holds, per event id.
	nc, err := bus.Connect(bus.ConnectOptions{URL: natsURL, Name: "e2e-check"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := bus.WaitJetStream(ctx, nc, js, nil); err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, bus.StreamWebhooks, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			break
		}
		ev := &toolbusv1.WebhookEvent{}
		if err := proto.Unmarshal(msg.Data(), ev); err != nil {
			t.Fatalf("undecodable event in stream: %v", err)
		}
		stored[ev.Id]++
	}
	var lost, duplicated []string
	for i := range events {
		id := fmt.Sprintf("evt_%04d", i)
		switch n := stored[id]; {
		case n == 0:
			lost = append(lost, id)
		case n > 1:
			duplicated = append(duplicated, id)
		}
	}
	t.Logf("sent %d events: %d acknowledged with 2xx, %d refused or failed and retried; stored %d distinct, %d lost, %d duplicated",
		events, accepted.Load(), refused.Load(), len(stored), len(lost), len(duplicated))
	if len(lost) > 0 || len(duplicated) > 0 {
		t.Errorf("lost %v, duplicated %v", lost, duplicated)
	}
	if refused.Load() == 0 {
		t.Error("no delivery was refused: the crashes did not hit the traffic, so this run proves nothing")
	}
}
