package webhookingest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
	webhookingest "github.com/toolbus/toolbus/services/webhook-ingest"
)

// benchSizes are the body sizes of every benchmark: the design budget's
// per-KB slope is taken between them.
var benchSizes = []int{1 << 10, 64 << 10}

// BenchmarkIngest measures verified, durably acknowledged events per second
// through the HTTP handler (loopback HTTP, Stripe signatures, file-storage
// JetStream in-process as in the all-in-one): with 64 concurrent senders
// for throughput, and with one sender for the service time per event (the
// p50 slope between the two sizes is the per-KB cost).
func BenchmarkIngest(b *testing.B) {
	for _, senders := range []int{64, 1} {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("body=%dKB/senders=%d", size>>10, senders), func(b *testing.B) {
				benchIngest(b, size, senders)
			})
		}
	}
}

// benchBody is a Stripe-like event of exactly size bytes.
func benchBody(size int, n, i int64) []byte {
	head := fmt.Sprintf(`{"id":"evt_%d_%d","type":"charge.succeeded","data":{"object":{"customer":"cus_%d","pad":"`, n, i, i%1000)
	const tail = `"}}}`
	b := make([]byte, 0, max(size, len(head)+len(tail)))
	b = append(b, head...)
	b = append(b, bytes.Repeat([]byte{'x'}, max(0, size-len(head)-len(tail)))...)
	return append(b, tail...)
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

	var next atomic.Int64
	lat := make([][]time.Duration, senders)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				// Building and signing the body is the provider's work: it
				// is outside the latency, which starts at the request.
				body := benchBody(size, int64(b.N), i)
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
	reportCPU(b, cpu0)
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(len(all))/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	}
}

// ackJS acknowledges every publish at once without storing it: it isolates
// the ingest's own work from JetStream's.
type ackJS struct {
	jetstream.JetStream
	seq atomic.Uint64
}

func (a *ackJS) PublishMsg(_ context.Context, msg *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if len(msg.Data) == 0 || msg.Header.Get(bus.HeaderMsgID) == "" {
		return nil, fmt.Errorf("ackJS: empty message")
	}
	return &jetstream.PubAck{Stream: bus.StreamWebhooks, Sequence: a.seq.Add(1)}, nil
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }

// rewindBody is a request body that can be read again.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

// BenchmarkReceive measures the handler alone, one delivery at a time: no
// HTTP connection, and a JetStream stub that acknowledges at once (the
// event feed still goes to a real NATS connection). Its allocations and
// its time per KB are the ingest's own (read, verify, extract, encode).
func BenchmarkReceive(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("body=%dKB", size>>10), func(b *testing.B) {
			benchReceive(b, size)
		})
	}
}

func benchReceive(b *testing.B, size int) {
	ns := bustest.Server(b)
	nc, err := bus.Connect(bus.ConnectOptions{InProcess: ns, Name: "bench", Logger: bustest.Logger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	cat := loadCatalog(b)
	svc, err := webhookingest.New(webhookingest.Options{Catalog: cat, NC: nc, JS: &ackJS{}, Logger: bustest.Logger()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := svc.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = svc.Shutdown(ctx) })
	h := svc.Handler()
	req := signedStripe(b, cat, benchBody(size, 0, 1))
	body := req.Body.(*rewindBody)
	w := &discardWriter{h: http.Header{}}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		body.Seek(0, io.SeekStart)
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, req)
		if w.status != http.StatusAccepted {
			b.Fatalf("status %d", w.status)
		}
	}
	reportCPU(b, cpu0)
}

// reportCPU reports the process's CPU time per operation since cpu0: in
// BenchmarkIngest that includes the senders, the HTTP client and the
// embedded NATS server.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	if cpu := processCPU(); cpu > 0 && b.N > 0 {
		b.ReportMetric(float64((cpu-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	}
}

// signedStripe is a signed delivery to the stripe source whose body can be
// rewound and read again.
func signedStripe(b *testing.B, cat *catalog.Catalog, body []byte) *http.Request {
	sch, err := cat.Sources["stripe"].Verifier()
	if err != nil {
		b.Fatal(err)
	}
	h, err := sch.Sign(body, time.Now(), "", "")
	if err != nil {
		b.Fatal(err)
	}
	rb := &rewindBody{}
	rb.Reset(body)
	req := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", rb)
	req.Body = rb
	req.ContentLength = int64(len(body))
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	return req
}
