// Command toolbus-bench measures Toolbus side by side with its floors (the
// upstream called directly, a plain go-sdk MCP server) and an open-source
// peer, on loopback, and prints a Markdown table, writes JSON and draws SVG
// charts. Every call asks for a distinct id and every answer is checked to
// carry it.
//
//	cd bench && GOWORK=off go run ./cmd/toolbus-bench -duration 10s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/toolbus/toolbus/bench/loadgen"
	"github.com/toolbus/toolbus/bench/proc"
	"github.com/toolbus/toolbus/bench/report"
	"github.com/toolbus/toolbus/bench/target"
)

func main() {
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == cmdUpstream:
		err = runUpstream(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == cmdPlainMCP:
		err = runPlainMCP(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == cmdLoadCatalog:
		err = runLoadCatalog(os.Args[2:])
	default:
		err = run(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "toolbus-bench:", err)
		os.Exit(1)
	}
}

type options struct {
	scenarios   []string
	concurrency []int
	duration    time.Duration
	warmup      time.Duration
	payload     int
	out         string
	charts      string
	repo        string
	toolbusBin  string
	natsBin     string
	node        string
	catalogSize int
	client      string
	callTimeout time.Duration
	smoke       bool
	keep        bool

	hookSenders      int
	hookBodies       []int
	hookOpenFraction float64
	hookClient       string
}

var allScenarios = []string{"direct", "plain", "toolbus", "toolbus-traced", "toolbus-split", "peer", "webhooks", "catalog"}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("toolbus-bench", flag.ContinueOnError)
	scen := fs.String("scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios: "+strings.Join(allScenarios, ", "))
	conc := fs.String("concurrency", "1,16,64,256", "comma-separated numbers of concurrent clients (one MCP session each)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured window per scenario and concurrency")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured calls before each window")
	fs.IntVar(&o.payload, "payload", 0, "pad every id to this many bytes (it travels in the request and twice in the answer); 0 keeps ids short")
	fs.StringVar(&o.out, "out", "results", "directory for results.json, results.md and the charts")
	fs.StringVar(&o.charts, "charts", "", "directory for the SVG charts (default: -out)")
	fs.StringVar(&o.repo, "repo", "", "Toolbus repository root (default: found from the working directory)")
	fs.StringVar(&o.toolbusBin, "toolbus-bin", "", "toolbus binary to measure (default: built from the repository)")
	fs.StringVar(&o.natsBin, "nats-server", "", "nats-server binary for the split scenario (default: REPO/bin/nats-server, built if missing)")
	fs.StringVar(&o.node, "node", "node", "Node.js binary for the peer")
	fs.IntVar(&o.catalogSize, "catalog-tools", 1000, "tools in the generated catalog of the catalog scenario")
	fs.StringVar(&o.client, "client", "raw", "MCP client for every MCP scenario: raw (small hand-written Streamable HTTP client; works with the peer) or sdk (the official go-sdk client; the peer cannot serve it)")
	fs.DurationVar(&o.callTimeout, "call-timeout", 10*time.Second, "give up on one call after this long (counted as an error)")
	fs.BoolVar(&o.smoke, "smoke", false, "prove the benchmark works: 1s windows at 1 and 4 clients, a short catalog run")
	fs.IntVar(&o.hookSenders, "webhook-senders", 64, "concurrent senders of the webhooks scenario's closed-loop runs")
	bodies := fs.String("webhook-bodies", "1024,65536", "comma-separated body sizes in bytes of the webhooks scenario (the first also gets the open-loop run)")
	fs.StringVar(&o.hookClient, "webhook-client", "raw", "HTTP client of the webhooks scenario's senders: raw (one kept-alive connection per sender, each prepared request written at once) or nethttp (Go's net/http client)")
	fs.Float64Var(&o.hookOpenFraction, "webhook-open-fraction", 0.8, "open-loop rate of the webhooks scenario, as a fraction of the first body size's closed-loop rate (0: no open-loop run)")
	fs.BoolVar(&o.keep, "keep", false, "keep the scratch directory (logs, catalogs, data) for inspection")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.smoke {
		o.duration, o.warmup = time.Second, 300*time.Millisecond
		if !flagSet(fs, "concurrency") {
			*conc = "1,4"
		}
		if !flagSet(fs, "webhook-senders") {
			o.hookSenders = 4
		}
	}
	for _, b := range strings.Split(*bodies, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(b))
		if err != nil || n < 1 || n > 4<<20 {
			return nil, fmt.Errorf("bad -webhook-bodies entry %q: want 1 to 4194304 bytes", b)
		}
		o.hookBodies = append(o.hookBodies, n)
	}
	if o.hookSenders < 1 || o.hookSenders > 4096 {
		return nil, errors.New("-webhook-senders must be between 1 and 4096")
	}
	if o.hookClient != "raw" && o.hookClient != "nethttp" {
		return nil, fmt.Errorf("-webhook-client %q: want raw or nethttp", o.hookClient)
	}
	if o.hookOpenFraction < 0 || o.hookOpenFraction > 2 {
		return nil, errors.New("-webhook-open-fraction must be between 0 and 2")
	}
	for _, s := range strings.Split(*scen, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(allScenarios, s) {
			return nil, fmt.Errorf("unknown scenario %q (known: %s)", s, strings.Join(allScenarios, ", "))
		}
		o.scenarios = append(o.scenarios, s)
	}
	for _, c := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 || n > 1024 {
			return nil, fmt.Errorf("bad -concurrency entry %q: want 1 to 1024", c)
		}
		o.concurrency = append(o.concurrency, n)
	}
	if o.duration <= 0 || o.duration > 5*time.Minute {
		return nil, errors.New("-duration must be between 0 and 5m")
	}
	if o.client != "raw" && o.client != "sdk" {
		return nil, fmt.Errorf("bad -client %q: want raw or sdk", o.client)
	}
	if o.charts == "" {
		o.charts = o.out
	}
	return o, nil
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// findRepo walks up from dir to the directory holding go.work and cmd/toolbus.
func findRepo(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if fileExists(filepath.Join(d, "go.work")) && fileExists(filepath.Join(d, "cmd", "toolbus")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no Toolbus repository (go.work and cmd/toolbus) above %s; pass -repo", dir)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func run(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if o.repo == "" {
		wd, _ := os.Getwd()
		if o.repo, err = findRepo(wd); err != nil {
			return err
		}
	}
	o.repo, _ = filepath.Abs(o.repo)
	if o.natsBin == "" {
		o.natsBin = filepath.Join(o.repo, "bin", "nats-server")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "toolbus-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "scratch directory:", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	for _, d := range []string{o.out, o.charts} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}

	e := &env{
		repo: o.repo, benchDir: filepath.Join(o.repo, "bench"), tmp: tmp, http: target.NewHTTPClient(), self: self,
		toolbusBin: o.toolbusBin, natsBin: o.natsBin, node: o.node, client: o.client,
	}
	if err := startUpstream(ctx, e); err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	defer e.upstream.Stop(2 * time.Second)

	rep := &report.Report{
		Command: "cd bench && GOWORK=off go run ./cmd/toolbus-bench " + strings.Join(args, " "),
		Started: time.Now().UTC().Format(time.RFC3339),
		Machine: machine(),
		Settings: report.Settings{
			DurationSec: o.duration.Seconds(), WarmupSec: o.warmup.Seconds(),
			Concurrency: o.concurrency, PayloadBytes: o.payload, Client: o.client,
		},
	}
	for _, sc := range scenarios {
		if !slices.Contains(o.scenarios, sc.name) || ctx.Err() != nil {
			continue
		}
		logf("scenario %s: starting", sc.name)
		d, err := sc.setup(ctx, e)
		if err != nil {
			var skip errSkip
			if !errors.As(err, &skip) {
				err = fmt.Errorf("setup failed: %w", err)
			}
			logf("scenario %s: skipped: %v", sc.name, err)
			rep.Skipped = append(rep.Skipped, report.Skipped{Scenario: sc.name, Reason: err.Error()})
			continue
		}
		rep.Titles = append(rep.Titles, report.Scenario{Name: sc.name, Title: sc.title, Note: d.note})
		for _, c := range o.concurrency {
			if ctx.Err() != nil {
				break
			}
			r := measure(ctx, e, d, sc.name, c, o)
			rep.Runs = append(rep.Runs, r)
			logf("scenario %s c=%d: %.0f calls/s p50 %.0fµs p99 %.0fµs errors %d wrong %d", sc.name, c, r.Throughput, r.P50us, r.P99us, r.Errors, r.Wrong)
			for _, s := range r.Samples {
				logf("  %s", s)
			}
		}
		if !d.serverIsUpstream {
			d.server.Stop(10 * time.Second)
		}
		if d.after != nil {
			line := d.after()
			logf("%s", line)
			rep.Notes = append(rep.Notes, line)
		}
	}
	if slices.Contains(o.scenarios, "webhooks") && ctx.Err() == nil {
		logf("scenario webhooks: starting")
		w, err := measureWebhooks(ctx, e, o)
		if err != nil {
			logf("scenario webhooks: skipped: %v", err)
			rep.Skipped = append(rep.Skipped, report.Skipped{Scenario: "webhooks", Reason: err.Error()})
		}
		rep.Webhooks = w
	}
	if slices.Contains(o.scenarios, "catalog") && ctx.Err() == nil {
		logf("scenario catalog: starting")
		c, err := measureCatalog(ctx, e, o)
		if err != nil {
			logf("scenario catalog: skipped: %v", err)
			rep.Skipped = append(rep.Skipped, report.Skipped{Scenario: "catalog", Reason: err.Error()})
		} else {
			rep.Catalog = c
		}
	}
	rep.Budget = budget(rep)
	rep.Machine.LoadAvgEnd = loadAvg()

	if err := rep.WriteJSON(filepath.Join(o.out, "results.json")); err != nil {
		return err
	}
	md, err := os.Create(filepath.Join(o.out, "results.md"))
	if err != nil {
		return err
	}
	rep.WriteMarkdown(md)
	if err := md.Close(); err != nil {
		return err
	}
	files, err := rep.WriteCharts(o.charts)
	if err != nil {
		return err
	}
	rep.WriteMarkdown(os.Stdout)
	logf("wrote %s, %s and %s", filepath.Join(o.out, "results.json"), filepath.Join(o.out, "results.md"), strings.Join(files, ", "))
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

// measure runs one scenario at one concurrency and accounts CPU time over
// exactly the measured window.
func measure(ctx context.Context, e *env, d *deployment, name string, c int, o *options) report.Run {
	server := d.server
	upstream := proc.Group{e.upstream}
	server.ResetPeak()
	var sSnap, uSnap proc.Snapshot
	var selfStart, selfEnd time.Duration
	var sUse, uUse []proc.Usage
	res := loadgen.Run(ctx, d.target, loadgen.Options{
		Concurrency: c, Warmup: o.warmup, Duration: o.duration, PayloadBytes: o.payload,
		Tag: loadgen.TagFor(name, c), CallTimeout: o.callTimeout,
		OnWindow: func(open bool) {
			if open {
				sSnap, uSnap = server.Snap(), upstream.Snap()
				selfStart, _ = proc.CPU(0)
				return
			}
			selfEnd, _ = proc.CPU(0)
			sUse, uUse = server.Since(sSnap), upstream.Since(uSnap)
		},
	})
	r := report.Run{Scenario: name, Concurrency: c, ServerIsUpstream: d.serverIsUpstream}
	if res.SetupError != nil {
		r.Errors = 1
		r.Samples = []string{res.SetupError.Error()}
		return r
	}
	us := func(q float64) float64 { return float64(res.Quantile(q).Nanoseconds()) / 1e3 }
	r.Calls, r.ElapsedSec, r.Throughput = res.Calls, res.Elapsed.Seconds(), res.Throughput()
	r.P50us, r.P90us, r.P99us, r.MaxUs = us(0.50), us(0.90), us(0.99), us(1)
	r.Errors, r.Wrong, r.Samples = res.Errors, res.Wrong, res.Samples
	r.Processes = sUse
	per1k := func(cpu float64) float64 {
		if res.Calls == 0 {
			return 0
		}
		return cpu / float64(res.Calls) * 1000
	}
	var scpu float64
	var rss int64
	for _, u := range sUse {
		scpu += u.CPUSec
		rss += u.PeakRSSB
	}
	r.ServerCPU, r.ServerPeakMB = per1k(scpu), float64(rss)/(1<<20)
	if !d.serverIsUpstream && len(uUse) == 1 {
		r.UpstreamCPU = per1k(uUse[0].CPUSec)
		r.Processes = append(r.Processes, uUse[0])
	}
	r.ClientCPU = per1k((selfEnd - selfStart).Seconds())
	return r
}

func machine() report.Machine {
	m := report.Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.LoadAvgStart = loadAvg()
	return m
}

// loadAvg is the 1-minute load average.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
