package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/toolbus/toolbus/bench/report"
	"github.com/toolbus/toolbus/catalog"
)

// cmdLoadCatalog re-runs this binary to load one catalog in a process of
// its own, so that its peak RSS is the import's alone.
const cmdLoadCatalog = "load-catalog"

// largeSpecs are the pinned documents openapi/testdata/fetch.sh caches.
var largeSpecs = []struct{ name, file string }{
	{"stripe", "stripe-spec3.json"},
	{"github", "github-api.json"},
}

// loadResult is what the child prints on standard output.
type loadResult struct {
	Tools      int       `json:"tools"`
	LoadMs     []float64 `json:"load_ms"`
	AllocMB    float64   `json:"alloc_mb"`
	RetainedMB float64   `json:"retained_mb"`
	PeakRSSMB  float64   `json:"peak_rss_mb"`
}

// runLoadCatalog loads -catalog -runs times with catalog.Load and reports
// the time of each load, the Go heap allocated by the last one, the live
// heap with its result held, and the process's peak RSS.
func runLoadCatalog(args []string) error {
	fs := flag.NewFlagSet(cmdLoadCatalog, flag.ContinueOnError)
	path := fs.String("catalog", "", "catalog file")
	runs := fs.Int("runs", 1, "loads")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var res loadResult
	var ms runtime.MemStats
	var keep *catalog.Catalog
	for range max(1, *runs) {
		keep = nil
		runtime.GC()
		runtime.ReadMemStats(&ms)
		alloc0, live0 := ms.TotalAlloc, ms.HeapAlloc
		start := time.Now()
		cat, err := catalog.Load(*path)
		d := time.Since(start)
		if err != nil {
			return err
		}
		runtime.ReadMemStats(&ms)
		res.AllocMB = float64(ms.TotalAlloc-alloc0) / (1 << 20)
		keep = cat
		runtime.GC()
		runtime.ReadMemStats(&ms)
		res.RetainedMB = (float64(ms.HeapAlloc) - float64(live0)) / (1 << 20)
		res.LoadMs = append(res.LoadMs, float64(d.Microseconds())/1e3)
		res.Tools = len(cat.Tools)
	}
	runtime.KeepAlive(keep)
	res.PeakRSSMB = float64(vmHWM()) / (1 << 20)
	return json.NewEncoder(os.Stdout).Encode(res)
}

// vmHWM is this process's peak resident set in bytes (0 if unknown).
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// measureImports imports each large document through a catalog that
// references it, in a child process. A missing cache is fetched by
// openapi/testdata/fetch.sh, except in smoke mode, which reports it.
func measureImports(ctx context.Context, e *env, o *options) []report.OpenAPIImport {
	cache := filepath.Join(e.repo, "openapi", "testdata", ".cache")
	missing := false
	for _, s := range largeSpecs {
		missing = missing || !fileExists(filepath.Join(cache, s.file))
	}
	var fetchErr string
	if missing && !o.smoke {
		logf("scenario catalog: fetching the large OpenAPI documents (openapi/testdata/fetch.sh)")
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(e.repo, "openapi", "testdata", "fetch.sh"))
		if b, err := cmd.CombinedOutput(); err != nil {
			fetchErr = fmt.Sprintf("openapi/testdata/fetch.sh failed: %v: %s", err, firstLines(string(b), 4))
		}
	}
	runs := 3
	if o.smoke {
		runs = 1
	}
	var out []report.OpenAPIImport
	for _, s := range largeSpecs {
		spec := filepath.Join(cache, s.file)
		im := report.OpenAPIImport{Name: s.name, File: "openapi/testdata/.cache/" + s.file}
		fi, err := os.Stat(spec)
		if err != nil {
			im.Error = "not measured: document missing; run `make openapi-specs` (openapi/testdata/fetch.sh)"
			if fetchErr != "" {
				im.Error = "not measured: " + fetchErr
			}
			out = append(out, im)
			continue
		}
		im.SpecBytes = fi.Size()
		// base_url is given (loopback, never called) so that the import
		// does not depend on the document's servers.
		src := fmt.Sprintf("version: 1\nupstreams:\n  %s:\n    base_url: http://127.0.0.1:9\n    openapi:\n      file: %s\n", s.name, spec)
		path := filepath.Join(e.tmp, "openapi-"+s.name+".yaml")
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			im.Error = err.Error()
			out = append(out, im)
			continue
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, e.self, cmdLoadCatalog, "-catalog", path, "-runs", strconv.Itoa(runs))
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		var res loadResult
		if err := cmd.Run(); err != nil {
			im.Error = fmt.Sprintf("catalog.Load failed: %v: %s", err, firstLines(stderr.String(), 4))
		} else if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || len(res.LoadMs) == 0 {
			im.Error = fmt.Sprintf("child answered %q", firstLines(stdout.String(), 2))
		} else {
			im.Tools, im.Runs, im.AllocMB, im.RetainedMB, im.PeakRSSMB = res.Tools, len(res.LoadMs), res.AllocMB, res.RetainedMB, res.PeakRSSMB
			im.LoadMs, im.LoadMsMax = res.LoadMs[0], res.LoadMs[0]
			for _, v := range res.LoadMs {
				im.LoadMs, im.LoadMsMax = min(im.LoadMs, v), max(im.LoadMsMax, v)
			}
			logf("scenario catalog: %s import %.0f ms, %d tools, %.0f MB allocated, peak RSS %.0f MB", s.name, im.LoadMs, im.Tools, im.AllocMB, im.PeakRSSMB)
		}
		out = append(out, im)
	}
	return out
}
