package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// Process-level settings of `toolbus serve`: the Go soft memory limit and
// an opt-in pprof endpoint (docs/operations.md "Memory and profiling").

// defaultEmbeddedMemoryLimit is the soft memory limit `--memory-limit auto`
// sets for the all-in-one (mcp-front over the embedded NATS server). Its
// live heap at 64 concurrent clients is 25 to 30 MiB (docs/performance.md
// "Memory"); with the default GOGC the heap goal is twice that, and on top
// come stacks, runtime metadata and about 35 MiB of the binary's own pages.
// The limit makes the collector run earlier when the Go memory grows
// towards it. It is soft, and off by default: at 256 clients the live heap
// nears it and the collector runs all the time (throughput fell by more
// than half on the benchmark).
const defaultEmbeddedMemoryLimit = 60 << 20

// runtimeConfig is what `toolbus serve` is told about its own process.
type runtimeConfig struct {
	// memoryLimit is "auto", "off" or a size; "" leaves the runtime alone
	// (tests that call serve directly).
	memoryLimit string
	// pprofAddr serves net/http/pprof when set; "" or "none" is off.
	pprofAddr string
	// pprofRemote allows pprofAddr on a non-loopback address.
	pprofRemote bool
}

func (c *runtimeConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.memoryLimit, "memory-limit", envOr("TOOLBUS_MEMORY_LIMIT", "off"),
		"Go soft memory limit: 'off' (the default), a size (e.g. 256MiB), or 'auto' ("+formatBytes(defaultEmbeddedMemoryLimit)+" when mcp-front runs over the embedded NATS server, none otherwise: less memory at moderate load, but GC thrash once the live heap nears it, see docs/performance.md); GOMEMLIMIT, when set, wins [TOOLBUS_MEMORY_LIMIT]")
	fs.StringVar(&c.pprofAddr, "pprof", envOr("TOOLBUS_PPROF_ADDR", ""),
		"serve Go profiles (net/http/pprof) and runtime metrics under /debug/ on this address, e.g. 127.0.0.1:6060; off when empty [TOOLBUS_PPROF_ADDR]")
	fs.BoolVar(&c.pprofRemote, "pprof-allow-remote", envOr("TOOLBUS_PPROF_ALLOW_REMOTE", "") == "true",
		"allow --pprof on an address other than loopback (profiles reveal internals; keep it private) [TOOLBUS_PPROF_ALLOW_REMOTE]")
}

// resolveMemoryLimit resolves the soft memory limit to set: ok is false
// when the runtime should be left alone (GOMEMLIMIT set, "off", or "auto"
// outside the all-in-one). allInOne is true when mcp-front runs over the
// embedded NATS server.
func (c runtimeConfig) resolveMemoryLimit(gomemlimit string, allInOne bool) (limit int64, ok bool, err error) {
	v := strings.TrimSpace(c.memoryLimit)
	switch {
	case v == "":
		return 0, false, nil
	case strings.EqualFold(v, "off"):
		return 0, false, nil
	case strings.EqualFold(v, "auto"):
		if gomemlimit != "" || !allInOne {
			return 0, false, nil
		}
		return defaultEmbeddedMemoryLimit, true, nil
	}
	n, err := parseBytes(v)
	if err != nil {
		return 0, false, fmt.Errorf("bad --memory-limit %q: %v (use a size such as 96MiB, 'auto' or 'off')", c.memoryLimit, err)
	}
	if gomemlimit != "" {
		return 0, false, nil
	}
	return n, true, nil
}

// applyMemoryLimit sets the soft memory limit from c and the environment
// and logs the outcome. It returns a function that restores the previous
// limit.
func (c runtimeConfig) applyMemoryLimit(log *slog.Logger, allInOne bool) (restore func(), err error) {
	gomem := os.Getenv("GOMEMLIMIT")
	limit, ok, err := c.resolveMemoryLimit(gomem, allInOne)
	if err != nil {
		return func() {}, usageError{err.Error()}
	}
	if !ok {
		if gomem != "" && c.memoryLimit != "" {
			log.Info("memory limit", "limit", gomem, "from", "GOMEMLIMIT")
		}
		return func() {}, nil
	}
	prev := debug.SetMemoryLimit(limit)
	log.Info("memory limit", "limit", formatBytes(limit), "from", "--memory-limit")
	return func() { debug.SetMemoryLimit(prev) }, nil
}

// parseBytes parses a size: a number of bytes with an optional unit B,
// KiB, MiB, GiB (powers of 1024; KB, MB, GB and K, M, G mean the same).
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errors.New("not a size")
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, err
	}
	var mul int64
	switch strings.ToLower(strings.TrimSpace(s[i:])) {
	case "", "b":
		mul = 1
	case "k", "kb", "kib":
		mul = 1 << 10
	case "m", "mb", "mib":
		mul = 1 << 20
	case "g", "gb", "gib":
		mul = 1 << 30
	default:
		return 0, fmt.Errorf("unknown unit %q", s[i:])
	}
	if n <= 0 {
		return 0, errors.New("must be positive")
	}
	if n > math.MaxInt64/mul {
		return 0, errors.New("too large")
	}
	return n * mul, nil
}

func formatBytes(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}

// checkPprofAddr refuses a non-loopback address unless allowed. A host
// name other than localhost counts as non-loopback.
func (c runtimeConfig) checkPprofAddr() error {
	if c.pprofAddr == "" || c.pprofAddr == "none" {
		return nil
	}
	host, _, err := net.SplitHostPort(c.pprofAddr)
	if err != nil {
		return usageError{fmt.Sprintf("bad --pprof %q: %v", c.pprofAddr, err)}
	}
	if c.pprofRemote {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return usageError{fmt.Sprintf("--pprof %q is not a loopback address: profiles expose the process's internals; use 127.0.0.1:PORT (and kubectl port-forward), or add --pprof-allow-remote", c.pprofAddr)}
}

// pprofHandler serves the Go profiles and a plain-text dump of
// runtime/metrics (heap goal, stacks, GC cycles) under /debug/.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /debug/runtime-metrics", serveRuntimeMetrics)
	return mux
}

// serveRuntimeMetrics writes every scalar runtime/metrics sample as
// "name value", one a line.
func serveRuntimeMetrics(w http.ResponseWriter, _ *http.Request) {
	descs := metrics.All()
	samples := make([]metrics.Sample, len(descs))
	for i := range descs {
		samples[i].Name = descs[i].Name
	}
	metrics.Read(samples)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var b strings.Builder
	for _, s := range samples {
		switch s.Value.Kind() {
		case metrics.KindUint64:
			fmt.Fprintf(&b, "%s %d\n", s.Name, s.Value.Uint64())
		case metrics.KindFloat64:
			fmt.Fprintf(&b, "%s %g\n", s.Name, s.Value.Float64())
		}
	}
	_, _ = w.Write([]byte(b.String()))
}

// startPprof serves pprofHandler on c.pprofAddr until the returned stop
// function is called; it does nothing when the address is empty.
func (c runtimeConfig) startPprof(log *slog.Logger) (addr string, stop func(), err error) {
	if c.pprofAddr == "" || c.pprofAddr == "none" {
		return "", func() {}, nil
	}
	if err := c.checkPprofAddr(); err != nil {
		return "", func() {}, err
	}
	lis, err := net.Listen("tcp", c.pprofAddr)
	if err != nil {
		return "", func() {}, fmt.Errorf("pprof listen: %w", err)
	}
	srv := &http.Server{Handler: pprofHandler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("pprof server", "error", err)
		}
	}()
	log.Warn("serving Go profiles; keep this address private", "pprof", "http://"+lis.Addr().String()+"/debug/pprof/")
	return lis.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}
