package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/toolbus/toolbus/bench/proc"
	"github.com/toolbus/toolbus/bench/report"
	"github.com/toolbus/toolbus/bench/target"
	"github.com/toolbus/toolbus/signature"
)

// webhookSecretEnv carries the bench source's secret to toolbus; the
// catalog refers to it as ${env:...}, never as a literal.
const webhookSecretEnv = "TOOLBUS_BENCH_STRIPE_SECRET"

// webhookEventType is the type of every event sent; it becomes the
// subject's last token.
const webhookEventType = "payment_intent.succeeded"

// measureWebhooks runs `toolbus serve --services webhook-ingest` over
// embedded NATS (JetStream file storage) with one stripe source, and posts
// signed, distinct events to POST /webhooks/stripe: closed loop at
// o.hookSenders senders for every body size, then open loop at
// o.hookOpenFraction of the smallest body's closed-loop rate.
func measureWebhooks(ctx context.Context, e *env, o *options) (*report.Webhooks, error) {
	if err := e.ensureToolbus(ctx); err != nil {
		return nil, err
	}
	cat, err := e.benchCatalog()
	if err != nil {
		return nil, err
	}
	src, err := os.ReadFile(cat)
	if err != nil {
		return nil, err
	}
	src = append(src, fmt.Sprintf("sources:\n  stripe:\n    scheme: stripe\n    secrets: [\"${env:%s}\"]\n", webhookSecretEnv)...)
	hookCat := cat[:len(cat)-len(".yaml")] + "-webhooks.yaml"
	if err := os.WriteFile(hookCat, src, 0o644); err != nil {
		return nil, err
	}
	secret := "whsec_bench_" + randHex(16)
	scheme, err := signature.New(signature.Config{Scheme: "stripe", Secrets: signature.Secrets{secret}})
	if err != nil {
		return nil, err
	}
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	// Each part runs on a fresh process and data directory, so that no run
	// pays for the gigabytes an earlier one stored (the 64 KB runs write
	// about 2 GB, and the kernel's write-back of them lands on later runs).
	start := func(part string) (*hookSender, func(), error) {
		data, err := os.MkdirTemp(e.tmp, "webhooks-data-")
		if err != nil {
			return nil, nil, err
		}
		p, addr, err := startToolbusEnv(ctx, e, "toolbus-webhooks-"+part, []string{webhookSecretEnv + "=" + secret},
			"--services", "webhook-ingest", "--catalog", hookCat, "--nats-listen", "none", "--http", "127.0.0.1:0", "--grpc", "none", "--data", data)
		if err != nil {
			return nil, nil, err
		}
		stop := func() {
			p.Stop(10 * time.Second)
			_ = os.RemoveAll(data)
		}
		if addr == "" {
			stop()
			return nil, nil, fmt.Errorf("toolbus webhook-ingest reported no HTTP address (log %s)", p.Log)
		}
		s := &hookSender{
			url: "http://" + addr + "/webhooks/stripe", scheme: scheme, http: target.NewHTTPClient(),
			tag: tag + part, server: proc.Group{p},
		}
		if err := s.useClient(o.hookClient); err != nil {
			stop()
			return nil, nil, err
		}
		return s, func() { s.closeClient(); stop() }, nil
	}
	clientNote := "Go net/http client"
	if o.hookClient == "raw" {
		clientNote = "raw HTTP/1.1 client (one kept-alive connection per sender, each request prepared and signed before the clock starts and written at once)"
	}
	out := &report.Webhooks{Note: "`toolbus serve --services webhook-ingest`, embedded NATS with JetStream file storage, one stripe source; every event signed and distinct, only 2xx (durably acknowledged) answers counted; " + clientNote + "; the one-sender runs and the others each on a fresh process and data directory"}

	// The smallest and largest bodies from one sender: the p50s are then
	// service time, not queueing behind other senders.
	var one []report.WebhookRun
	if o.hookSenders > 1 && len(o.hookBodies) >= 2 {
		sizes := []int{o.hookBodies[0], o.hookBodies[len(o.hookBodies)-1]}
		s, stop, err := start("one")
		if err != nil {
			return nil, err
		}
		one = s.oneSender(ctx, o, sizes, "closed")
		stop()
		out.PerKB1us = perKB(one)
		// The floor: the same signed bodies from one sender, posted over the
		// same loopback HTTP client to a server that only reads the body
		// and answers 202. What the ingest adds per KB is the difference.
		if floor, err := startHookFloor(); err == nil {
			fs := &hookSender{url: floor.url, scheme: scheme, http: target.NewHTTPClient(), tag: tag + "f"}
			if err := fs.useClient(o.hookClient); err != nil {
				return nil, err
			}
			out.PerKBFloorus = perKB(fs.oneSender(ctx, o, sizes, "floor"))
			fs.closeClient()
			floor.stop()
		} else {
			logf("scenario webhooks floor: %v", err)
		}
	}

	s, stop, err := start("many")
	if err != nil {
		return nil, err
	}
	defer stop()
	// The open loop runs right after the first body's closed loop, whose
	// rate it takes, before the larger bodies fill the disk.
	var closed []report.WebhookRun
	var open *report.WebhookRun
	for i, size := range o.hookBodies {
		if ctx.Err() != nil {
			break
		}
		r := s.closed(ctx, size, o.hookSenders, o.warmup, o.duration, o.callTimeout)
		logf("scenario webhooks closed %d B x%d: %.0f acked/s p50 %.0fµs p99 %.0fµs errors %d", size, o.hookSenders, r.Rate, r.P50us, r.P99us, r.Errors)
		closed = append(closed, r)
		if i == 0 && r.Rate > 0 && o.hookOpenFraction > 0 && ctx.Err() == nil {
			rate := r.Rate * o.hookOpenFraction
			or := s.open(ctx, size, 2*o.hookSenders, rate, o.warmup, o.duration, o.callTimeout)
			or.Mode = fmt.Sprintf("open, %.0f%% of closed max", o.hookOpenFraction*100)
			logf("scenario webhooks open %d B at %.0f/s: %.0f acked/s p50 %.0fµs p99 %.0fµs errors %d late %d", size, rate, or.Rate, or.P50us, or.P99us, or.Errors, or.Late)
			open = &or
		}
	}
	out.Runs = append(out.Runs, closed...)
	out.PerKBus = perKB(closed)
	if open != nil {
		out.Runs = append(out.Runs, *open)
	}
	out.Runs = append(out.Runs, one...)
	return out, nil
}

// oneSender runs each body size from a single sender, closed loop.
func (s *hookSender) oneSender(ctx context.Context, o *options, sizes []int, label string) []report.WebhookRun {
	var runs []report.WebhookRun
	for _, size := range sizes {
		if ctx.Err() != nil {
			break
		}
		r := s.closed(ctx, size, 1, o.warmup, min(o.duration, 3*time.Second), o.callTimeout)
		logf("scenario webhooks %s %d B x1: %.0f/s p50 %.0fµs p99 %.0fµs errors %d", label, size, r.Rate, r.P50us, r.P99us, r.Errors)
		runs = append(runs, r)
	}
	return runs
}

// perKB is the p50 slope per KB between the first and the last run.
func perKB(runs []report.WebhookRun) float64 {
	if len(runs) < 2 {
		return 0
	}
	lo, hi := runs[0], runs[len(runs)-1]
	if hi.BodyBytes <= lo.BodyBytes || lo.Acked == 0 || hi.Acked == 0 {
		return 0
	}
	return (hi.P50us - lo.P50us) / (float64(hi.BodyBytes-lo.BodyBytes) / 1024)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// hookSender signs and posts events.
type hookSender struct {
	url    string
	scheme signature.Scheme
	http   *http.Client
	wire   *wirePoster // the raw client (hookwire.go); nil: net/http
	tag    string
	seq    atomic.Int64
	server proc.Group
}

// useClient picks the sender's HTTP client: "raw" or "nethttp".
func (s *hookSender) useClient(kind string) error {
	switch kind {
	case "raw":
		wp, err := newWirePoster(s.url)
		if err != nil {
			return err
		}
		s.wire = wp
	case "nethttp":
	default:
		return fmt.Errorf("unknown webhook client %q (want raw or nethttp)", kind)
	}
	return nil
}

func (s *hookSender) closeClient() {
	if s.wire != nil {
		s.wire.close()
	}
}

// body returns a Stripe-like event of exactly size bytes (or the smallest
// possible when size is smaller) with a fresh id.
func (s *hookSender) body(size int) (id string, b []byte) {
	n := s.seq.Add(1)
	id = "evt_" + s.tag + "_" + strconv.FormatInt(n, 10)
	head := fmt.Sprintf(`{"id":%q,"object":"event","type":%q,"created":%d,"data":{"object":{"id":"pi_%d","object":"payment_intent","amount":%d,"currency":"usd","pad":"`,
		id, webhookEventType, time.Now().Unix(), n, 100+n%10000)
	const tail = `"}}}`
	pad := max(0, size-len(head)-len(tail))
	b = make([]byte, 0, len(head)+pad+len(tail))
	b = append(b, head...)
	b = append(b, bytes.Repeat([]byte{'x'}, pad)...)
	b = append(b, tail...)
	return id, b
}

// event is a signed delivery ready to send.
type event struct {
	body   []byte
	header http.Header
	req    []byte // the whole request, for the raw client
	err    string // signing failed
}

// prepare builds and signs the next event: the provider's work, done before
// the latency clock starts so that the body's size does not charge the
// generator's signing (an HMAC over the whole body) to the ingest.
func (s *hookSender) prepare(size int) event {
	id, b := s.body(size)
	h, err := s.scheme.Sign(b, time.Now(), id, webhookEventType)
	if err != nil {
		return event{err: "sign: " + err.Error()}
	}
	h.Set("Content-Type", "application/json")
	ev := event{body: b, header: h}
	if s.wire != nil {
		ev.req = s.wire.wire(h, b)
	}
	return ev
}

// post sends one prepared event; ok is a 2xx answer.
func (s *hookSender) post(ctx context.Context, ev event, timeout time.Duration) (ok bool, sample string) {
	if ev.err != "" {
		return false, ev.err
	}
	if s.wire != nil {
		status, body, err := s.wire.post(ev.req, timeout)
		switch {
		case err != nil:
			return false, err.Error()
		case status/100 != 2:
			return false, fmt.Sprintf("status %d: %.120s", status, strings.TrimSpace(body))
		}
		return true, ""
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, s.url, bytes.NewReader(ev.body))
	if err != nil {
		return false, err.Error()
	}
	req.Header = ev.header
	resp, err := s.http.Do(req)
	if err != nil {
		return false, err.Error()
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return false, fmt.Sprintf("status %d: %.120s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return true, ""
}

// tally gathers one run's outcomes.
type tally struct {
	mu      sync.Mutex
	lats    []time.Duration
	errors  int64
	late    int64
	samples []string
}

func (t *tally) add(ok bool, lat time.Duration, sample string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ok {
		t.lats = append(t.lats, lat)
		return
	}
	t.errors++
	if len(t.samples) < 5 && !slices.Contains(t.samples, sample) {
		t.samples = append(t.samples, sample)
	}
}

// window snapshots the server's and the generator's CPU over the measured
// window.
type window struct {
	server  proc.Group
	snap    proc.Snapshot
	self0   time.Duration
	self1   time.Duration
	use     []proc.Usage
	started time.Time
	elapsed time.Duration
}

func (w *window) open() {
	w.server.ResetPeak()
	w.snap = w.server.Snap()
	w.self0, _ = proc.CPU(0)
	w.started = time.Now()
}

func (w *window) close() {
	w.elapsed = time.Since(w.started)
	w.self1, _ = proc.CPU(0)
	w.use = w.server.Since(w.snap)
}

func (w *window) fill(r *report.WebhookRun, t *tally) {
	lats := t.lats
	slices.Sort(lats)
	q := func(f float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		return float64(lats[min(len(lats)-1, int(f*float64(len(lats))))].Nanoseconds()) / 1e3
	}
	r.Acked, r.Errors, r.Late, r.Samples = int64(len(lats)), t.errors, t.late, t.samples
	r.ElapsedSec = w.elapsed.Seconds()
	if r.ElapsedSec > 0 {
		r.Rate = float64(r.Acked) / r.ElapsedSec
	}
	r.P50us, r.P90us, r.P99us, r.MaxUs = q(0.50), q(0.90), q(0.99), q(1)
	var cpu float64
	var rss int64
	for _, u := range w.use {
		cpu += u.CPUSec
		rss += u.PeakRSSB
	}
	if r.Acked > 0 {
		r.ServerCPU = cpu / float64(r.Acked) * 1000
		r.ClientCPU = (w.self1 - w.self0).Seconds() / float64(r.Acked) * 1000
	}
	r.PeakRSSMB = float64(rss) / (1 << 20)
}

// closed runs senders loops that each post the next event as soon as the
// previous one is answered; only events sent inside the window count.
func (s *hookSender) closed(ctx context.Context, size, senders int, warmup, dur, timeout time.Duration) report.WebhookRun {
	r := report.WebhookRun{Mode: "closed", BodyBytes: size, Senders: senders}
	t := &tally{}
	w := &window{server: s.server}
	var measuring atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if ctx.Err() != nil {
					return
				}
				ev := s.prepare(size)
				m := measuring.Load()
				t0 := time.Now()
				ok, sample := s.post(ctx, ev, timeout)
				if m && measuring.Load() {
					t.add(ok, time.Since(t0), sample)
				}
			}
		})
	}
	sleepCtx(ctx, warmup)
	w.open()
	measuring.Store(true)
	sleepCtx(ctx, dur)
	measuring.Store(false)
	w.close()
	close(stop)
	wg.Wait()
	w.fill(&r, t)
	return r
}

// open posts at rate events per second whatever the answers: a
// dispatcher queues each event at its scheduled time for a pool of workers
// (twice the closed-loop senders, each with its kept-alive connection), and
// each latency runs from the scheduled time, so that a stall or a busy pool
// is not hidden by the generator waiting on it.
func (s *hookSender) open(ctx context.Context, size, workers int, rate float64, warmup, dur, timeout time.Duration) report.WebhookRun {
	r := report.WebhookRun{BodyBytes: size, Senders: workers, TargetRate: rate}
	t := &tally{}
	w := &window{server: s.server}
	interval := time.Duration(float64(time.Second) / rate)
	type slot struct {
		due      time.Time
		measured bool
	}
	queue := make(chan slot, 1<<16)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			// Each worker signs its next event while it waits for a slot:
			// a provider signs before it sends, so signing is not part of
			// the latency, which runs from the scheduled time.
			ev := s.prepare(size)
			for sl := range queue {
				late := time.Since(sl.due) > time.Millisecond
				ok, sample := s.post(ctx, ev, timeout)
				if sl.measured {
					t.add(ok, time.Since(sl.due), sample)
					if late {
						t.mu.Lock()
						t.late++
						t.mu.Unlock()
					}
				}
				ev = s.prepare(size)
			}
		})
	}
	start := time.Now()
	winStart, winEnd := start.Add(warmup), start.Add(warmup+dur)
	opened := false
	for i := 0; ctx.Err() == nil; i++ {
		due := start.Add(time.Duration(i) * interval)
		if !due.Before(winEnd) {
			break
		}
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		measured := !due.Before(winStart)
		if measured && !opened {
			w.open()
			opened = true
		}
		queue <- slot{due, measured}
	}
	close(queue)
	if !opened {
		w.open()
	}
	// The window ends with the last scheduled send; the answers still in
	// flight are waited for (they count), the CPU is read after them.
	wg.Wait()
	w.close()
	w.elapsed = dur
	w.fill(&r, t)
	return r
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// hookFloor is an HTTP server that reads each body whole and answers 202:
// what any receiver pays per KB before verifying or storing anything.
type hookFloor struct {
	url  string
	srv  *http.Server
	done chan struct{}
}

func startHookFloor() (*hookFloor, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &hookFloor{url: "http://" + ln.Addr().String() + "/webhooks/stripe", done: make(chan struct{})}
	f.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	})}
	go func() { defer close(f.done); _ = f.srv.Serve(ln) }()
	return f, nil
}

func (f *hookFloor) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = f.srv.Shutdown(ctx)
	<-f.done
}
