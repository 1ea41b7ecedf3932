package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolveMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		flag, gomemlimit string
		allInOne         bool
		want             int64
		ok, err          bool
	}{
		{flag: "auto", allInOne: true, want: defaultEmbeddedMemoryLimit, ok: true},
		{flag: "AUTO", allInOne: true, want: defaultEmbeddedMemoryLimit, ok: true},
		{flag: "auto", allInOne: false},                      // split shape: the container's GOMEMLIMIT, if any
		{flag: "auto", gomemlimit: "200MiB", allInOne: true}, // GOMEMLIMIT wins
		{flag: "auto", gomemlimit: "off", allInOne: true},    // even when it says off
		{flag: "128MiB", allInOne: false, want: 128 << 20, ok: true},
		{flag: "128MiB", gomemlimit: "1GiB", allInOne: true}, // GOMEMLIMIT wins over the flag too
		{flag: "2g", allInOne: true, want: 2 << 30, ok: true},
		{flag: "off", allInOne: true},
		{flag: "", allInOne: true}, // zero config (tests calling serve): leave the runtime alone
		{flag: "lots", allInOne: true, err: true},
		{flag: "0", allInOne: true, err: true},
		{flag: "12 parsecs", allInOne: true, err: true},
	} {
		c := runtimeConfig{memoryLimit: tc.flag}
		got, ok, err := c.resolveMemoryLimit(tc.gomemlimit, tc.allInOne)
		if (err != nil) != tc.err || ok != tc.ok || got != tc.want {
			t.Errorf("%q (GOMEMLIMIT=%q, all-in-one %v) = %d, %v, %v; want %d, %v, error %v",
				tc.flag, tc.gomemlimit, tc.allInOne, got, ok, err, tc.want, tc.ok, tc.err)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"1": 1, "512B": 512, "64KiB": 64 << 10, "64k": 64 << 10, "60MiB": 60 << 20,
		"60 MB": 60 << 20, "1GiB": 1 << 30, "3G": 3 << 30,
	} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1MiB", "0", "1TiB", "99999999999999999999", "9999999999999GiB"} {
		if got, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) = %d, want an error", in, got)
		}
	}
	if got := formatBytes(defaultEmbeddedMemoryLimit); got != "60MiB" {
		t.Errorf("formatBytes(default) = %q", got)
	}
}

// The limit is set, and restored, only when GOMEMLIMIT is not set.
func TestApplyMemoryLimit(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	before := debug.SetMemoryLimit(-1)

	t.Setenv("GOMEMLIMIT", "")
	restore, err := runtimeConfig{memoryLimit: "auto"}.applyMemoryLimit(log, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != defaultEmbeddedMemoryLimit {
		t.Errorf("limit %d after auto in the all-in-one, want %d", got, defaultEmbeddedMemoryLimit)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("limit %d after restore, want %d", got, before)
	}

	// The runtime read GOMEMLIMIT at start-up; the flag must not override it.
	t.Setenv("GOMEMLIMIT", "1GiB")
	restore, err = runtimeConfig{memoryLimit: "96MiB"}.applyMemoryLimit(log, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("limit %d with GOMEMLIMIT set, want it untouched (%d)", got, before)
	}
	restore()

	if _, err := (runtimeConfig{memoryLimit: "much"}).applyMemoryLimit(log, true); !errors.As(err, new(usageError)) {
		t.Errorf("bad limit: error %v, want a usage error", err)
	}
}

func TestPprofAddrIsLoopbackUnlessAllowed(t *testing.T) {
	for addr, ok := range map[string]bool{
		"":                true, // off
		"none":            true,
		"127.0.0.1:6060":  true,
		"[::1]:6060":      true,
		"localhost:6060":  true,
		"0.0.0.0:6060":    false,
		":6060":           false, // every interface
		"10.1.2.3:6060":   false,
		"pod.local:6060":  false,
		"127.0.0.1":       false, // no port
		"[::]:6060":       false,
		"127.0.0.2:6060":  true,
		"192.168.0.1:123": false,
	} {
		err := runtimeConfig{pprofAddr: addr}.checkPprofAddr()
		if (err == nil) != ok {
			t.Errorf("checkPprofAddr(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
	if err := (runtimeConfig{pprofAddr: "0.0.0.0:6060", pprofRemote: true}).checkPprofAddr(); err != nil {
		t.Errorf("--pprof-allow-remote: %v", err)
	}
}

func TestRuntimeFlagsFromEnv(t *testing.T) {
	t.Setenv("TOOLBUS_MEMORY_LIMIT", "80MiB")
	t.Setenv("TOOLBUS_PPROF_ADDR", "127.0.0.1:6061")
	t.Setenv("TOOLBUS_PPROF_ALLOW_REMOTE", "true")
	var cfg serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if cfg.runtime != (runtimeConfig{memoryLimit: "80MiB", pprofAddr: "127.0.0.1:6061", pprofRemote: true}) {
		t.Errorf("from the environment: %+v", cfg.runtime)
	}
	// Flags win over the environment.
	if err := fs.Parse([]string{"--memory-limit", "off", "--pprof", ""}); err != nil {
		t.Fatal(err)
	}
	if cfg.runtime.memoryLimit != "off" || cfg.runtime.pprofAddr != "" {
		t.Errorf("flags after the environment: %+v", cfg.runtime)
	}

	// Defaults: no limit, no pprof.
	for _, env := range []string{"TOOLBUS_MEMORY_LIMIT", "TOOLBUS_PPROF_ADDR", "TOOLBUS_PPROF_ALLOW_REMOTE"} {
		t.Setenv(env, "")
		os.Unsetenv(env) // t.Setenv restores it
	}
	var def serveConfig
	fs = flag.NewFlagSet("serve", flag.ContinueOnError)
	def.register(fs)
	_ = fs.Parse(nil)
	if def.runtime.pprofAddr != "" || def.runtime.pprofRemote {
		t.Errorf("pprof must be off by default: %+v", def.runtime)
	}
	if def.runtime.memoryLimit != "off" {
		t.Errorf("memory limit %q by default, want off (a limit near the live heap thrashes the GC at high concurrency)", def.runtime.memoryLimit)
	}
}

// Bad values stop `toolbus serve` before it starts anything.
func TestServeRejectsBadRuntimeSettings(t *testing.T) {
	for name, args := range map[string][]string{
		"memory limit":       {"--memory-limit", "lots"},
		"pprof not on lo":    {"--pprof", "0.0.0.0:6060"},
		"pprof without port": {"--pprof", "127.0.0.1"},
	} {
		err := runServe(context.Background(), args, nil, io.Discard, io.Discard)
		if !errors.As(err, new(usageError)) {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}
}

func TestPprofServer(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	addr, stop, err := runtimeConfig{pprofAddr: "127.0.0.1:0"}.startPprof(log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "heap") {
		t.Errorf("/debug/pprof/: %d %.200s", code, body)
	}
	if code, body := get("/debug/pprof/heap?debug=1"); code != http.StatusOK || !strings.Contains(body, "# runtime.MemStats") {
		t.Errorf("/debug/pprof/heap: %d %.200s", code, body)
	}
	if code, body := get("/debug/runtime-metrics"); code != http.StatusOK || !strings.Contains(body, "/gc/heap/goal:bytes ") {
		t.Errorf("/debug/runtime-metrics: %d %.200s", code, body)
	}
	if code, _ := get("/mcp"); code != http.StatusNotFound {
		t.Errorf("/mcp on the pprof listener: %d, want 404", code)
	}

	// Off: nothing listens.
	addr, stopOff, err := runtimeConfig{}.startPprof(log)
	stopOff()
	if err != nil || addr != "" {
		t.Errorf("pprof off: %q, %v", addr, err)
	}
}
