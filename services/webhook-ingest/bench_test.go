package webhookingest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	webhookingest "github.com/toolbus/toolbus/services/webhook-ingest"
)

// BenchmarkIngest measures verified, durably acknowledged events per second
// through the HTTP handler (loopback HTTP, Stripe signatures, file-storage
// JetStream in-process as in the all-in-one) with 64 concurrent senders.
func BenchmarkIngest(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("body=%dKB/senders=64", size>>10), func(b *testing.B) {
			benchIngest(b, size, 64)
		})
	}
}

func benchIngest(b *testing.B, size, senders int) {
	ns, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: b.TempDir(), DontListen: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := bus.Connect(bus.ConnectOptions{InProcess: ns, Name: "bench", Logger: bustest.Logger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := bus.DefaultTopology().Ensure(ctx, js); err != nil {
		b.Fatal(err)
	}
	cat := loadCatalog(b)
	svc, err := webhookingest.New(webhookingest.Options{Catalog: cat, NC: nc, JS: js, Logger: bustest.Logger()})
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(svc.Handler())
	b.Cleanup(hs.Close)
	b.Cleanup(func() { _ = svc.Shutdown(ctx) })
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders, MaxConnsPerHost: senders}}
	b.Cleanup(client.CloseIdleConnections)
	sch, err := cat.Sources["stripe"].Verifier()
	if err != nil {
		b.Fatal(err)
	}
	pad := strings.Repeat("x", size-150)

	var next atomic.Int64
	lat := make([][]time.Duration, senders)
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				body := fmt.Appendf(nil, `{"id":"evt_%d_%d","type":"charge.succeeded","data":{"object":{"customer":"cus_%d","pad":%q}}}`, b.N, i, i%1000, pad)
				h, err := sch.Sign(body, time.Now(), "", "")
				if err != nil {
					b.Error(err)
					return
				}
				req, _ := http.NewRequest(http.MethodPost, hs.URL+"/webhooks/stripe", bytes.NewReader(body))
				req.Header = h
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[s] = append(lat[s], time.Since(t0))
				if resp.StatusCode != http.StatusAccepted {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(len(all))/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	}
}
