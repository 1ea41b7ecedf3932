// Package report holds the benchmark's results and writes them as a
// Markdown table, JSON and SVG charts. It measures nothing.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/toolbus/toolbus/bench/proc"
)

// Report is everything one benchmark run measured.
type Report struct {
	Command  string       `json:"command"`
	Started  string       `json:"started"`
	Machine  Machine      `json:"machine"`
	Settings Settings     `json:"settings"`
	Runs     []Run        `json:"runs"`
	Catalog  *Catalog     `json:"catalog,omitempty"`
	Webhooks *Webhooks    `json:"webhooks,omitempty"`
	Skipped  []Skipped    `json:"skipped,omitempty"`
	Titles   []Scenario   `json:"scenarios"`
	Budget   []BudgetLine `json:"budget,omitempty"`
	// Notes are lines a scenario reported after its runs (for example how
	// many spans the traced scenario's sink received).
	Notes []string `json:"notes,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	GoVersion string `json:"go_version"`
	Kernel    string `json:"kernel"`
	// LoadAvg is /proc/loadavg's 1-minute figure at the start and end of
	// the run: other work on the machine skews every figure.
	LoadAvgStart string `json:"loadavg_start"`
	LoadAvgEnd   string `json:"loadavg_end"`
}

// Settings are the run's options.
type Settings struct {
	DurationSec  float64 `json:"duration_seconds"`
	WarmupSec    float64 `json:"warmup_seconds"`
	Concurrency  []int   `json:"concurrency"`
	PayloadBytes int     `json:"payload_bytes"`
	Client       string  `json:"mcp_client"`
}

// Scenario names a scenario for tables and charts.
type Scenario struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	Note  string `json:"note,omitempty"`
}

// Skipped is a scenario that could not run, and why.
type Skipped struct {
	Scenario string `json:"scenario"`
	Reason   string `json:"reason"`
}

// Run is one scenario at one concurrency.
type Run struct {
	Scenario    string  `json:"scenario"`
	Concurrency int     `json:"concurrency"`
	Calls       int64   `json:"calls"`
	ElapsedSec  float64 `json:"elapsed_seconds"`
	Throughput  float64 `json:"calls_per_second"`
	P50us       float64 `json:"p50_us"`
	P90us       float64 `json:"p90_us"`
	P99us       float64 `json:"p99_us"`
	MaxUs       float64 `json:"max_us"`
	// CPU seconds per 1,000 calls: the system under test (all its
	// processes, upstream excluded unless it is the upstream), the
	// upstream, and the load generator.
	ServerCPU    float64      `json:"server_cpu_s_per_1k"`
	UpstreamCPU  float64      `json:"upstream_cpu_s_per_1k"`
	ClientCPU    float64      `json:"client_cpu_s_per_1k"`
	ServerPeakMB float64      `json:"server_peak_rss_mb"`
	Errors       int64        `json:"errors"`
	Wrong        int64        `json:"wrong_answers"`
	Samples      []string     `json:"error_samples,omitempty"`
	Processes    []proc.Usage `json:"processes"`
	// ServerIsUpstream is set for the direct scenario.
	ServerIsUpstream bool `json:"server_is_upstream,omitempty"`
}

// Catalog is the catalog-scale scenario.
type Catalog struct {
	Tools        int     `json:"tools"`
	CatalogBytes int     `json:"catalog_bytes"`
	ParseMs      float64 `json:"parse_ms"`
	ParseAllocMB float64 `json:"parse_alloc_mb"`
	StartupMs    float64 `json:"startup_to_ready_ms"`
	ServerPeakMB float64 `json:"server_peak_rss_mb"`
	ListCalls    int     `json:"tools_list_calls"`
	ListP50us    float64 `json:"tools_list_p50_us"`
	ListP99us    float64 `json:"tools_list_p99_us"`
	// ListAnswer* time tools/list from sending the request to the last
	// byte of the answer, without the client's JSON decoding (0 when the
	// client cannot tell them apart: the go-sdk client).
	ListAnswerP50us float64 `json:"tools_list_answer_p50_us,omitempty"`
	ListAnswerP99us float64 `json:"tools_list_answer_p99_us,omitempty"`
	ListErrors      int     `json:"tools_list_errors"`
	ListedTools     int     `json:"listed_tools"`
	OpenAPIImport   string  `json:"openapi_import,omitempty"`
	// Imports are the large OpenAPI documents loaded through catalog.Load.
	Imports           []OpenAPIImport `json:"openapi_imports,omitempty"`
	ListResponseBytes int             `json:"tools_list_response_bytes,omitempty"`
}

// OpenAPIImport is one large OpenAPI document imported by catalog.Load in
// a child process of its own, so that its peak RSS is the import's.
type OpenAPIImport struct {
	Name       string  `json:"name"`
	File       string  `json:"file"`
	SpecBytes  int64   `json:"spec_bytes"`
	Tools      int     `json:"tools"`
	Runs       int     `json:"runs"`
	LoadMs     float64 `json:"load_ms"`     // fastest run
	LoadMsMax  float64 `json:"load_ms_max"` // slowest run
	AllocMB    float64 `json:"alloc_mb"`    // Go heap allocated by one Load
	RetainedMB float64 `json:"retained_mb"` // live heap after GC, catalog held
	PeakRSSMB  float64 `json:"peak_rss_mb"` // the child's VmHWM
	Error      string  `json:"error,omitempty"`
}

// Webhooks is the webhook-ingest scenario.
type Webhooks struct {
	Note string       `json:"note"`
	Runs []WebhookRun `json:"runs"`
	// PerKBus is the p50 latency slope per KB of body, from the closed-loop
	// p50s at the smallest and largest body size.
	PerKBus float64 `json:"p50_us_per_kb"`
	// PerKB1us is the same slope at one sender, where the p50 is service
	// time rather than queueing.
	PerKB1us float64 `json:"p50_us_per_kb_one_sender"`
	// PerKBFloorus is the same one-sender slope against a server that only
	// reads the body (loopback HTTP, the floor every receiver pays).
	PerKBFloorus float64 `json:"p50_us_per_kb_floor,omitempty"`
}

// WebhookRun is one webhook load: closed loop (Senders each post as fast
// as answers come) or open loop (paced at TargetRate, latency counted from
// each event's scheduled time).
type WebhookRun struct {
	Mode       string   `json:"mode"` // "closed" or "open"
	BodyBytes  int      `json:"body_bytes"`
	Senders    int      `json:"senders"`
	TargetRate float64  `json:"target_rate,omitempty"`
	Acked      int64    `json:"acked"` // 2xx answers in the window
	ElapsedSec float64  `json:"elapsed_seconds"`
	Rate       float64  `json:"acked_per_second"`
	P50us      float64  `json:"p50_us"`
	P90us      float64  `json:"p90_us"`
	P99us      float64  `json:"p99_us"`
	MaxUs      float64  `json:"max_us"`
	ServerCPU  float64  `json:"server_cpu_s_per_1k"`
	ClientCPU  float64  `json:"client_cpu_s_per_1k"`
	PeakRSSMB  float64  `json:"server_peak_rss_mb"`
	Errors     int64    `json:"errors"`
	Late       int64    `json:"late,omitempty"` // open loop: sends that started > 1 ms after their slot
	Samples    []string `json:"error_samples,omitempty"`
}

// BudgetLine is one target of the design's performance budget, checked
// against this run's figures.
type BudgetLine struct {
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Verdict  string `json:"verdict"` // met, missed, or n/a
}

// WriteJSON writes r to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func (r *Report) title(name string) string {
	for _, s := range r.Titles {
		if s.Name == name {
			return s.Title
		}
	}
	return name
}

// Find returns the run of scenario at concurrency c.
func (r *Report) Find(scenario string, c int) *Run {
	for i := range r.Runs {
		if r.Runs[i].Scenario == scenario && r.Runs[i].Concurrency == c {
			return &r.Runs[i]
		}
	}
	return nil
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }

func cpu(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.3f", v)
}

// WriteMarkdown writes the results table, the catalog figures, the budget
// check and the skipped scenarios.
func (r *Report) WriteMarkdown(w io.Writer) {
	fmt.Fprintf(w, "Command: `%s`  \n", r.Command)
	fmt.Fprintf(w, "Machine: %d CPUs (%s), %s, Linux %s, load average %s at start and %s at end; %s per run after %s warm-up; payload %s; MCP client: %s.\n\n",
		r.Machine.CPUs, r.Machine.CPUModel, r.Machine.GoVersion, r.Machine.Kernel, r.Machine.LoadAvgStart, r.Machine.LoadAvgEnd,
		secs(r.Settings.DurationSec), secs(r.Settings.WarmupSec), payload(r.Settings.PayloadBytes), clientName(r.Settings.Client))
	fmt.Fprintln(w, "| Scenario | Clients | Calls/s | p50 µs | p90 µs | p99 µs | Server CPU s/1k calls | Upstream CPU s/1k | Generator CPU s/1k | Server peak RSS MB | Errors | Wrong answers | Calls/s vs plain MCP | p50 over plain MCP µs |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, run := range r.Runs {
		ratio, delta := "—", "—"
		if base := r.Find("plain", run.Concurrency); base != nil && base.Throughput > 0 && run.Scenario != "plain" && run.Scenario != "direct" {
			ratio = fmt.Sprintf("%.2f×", run.Throughput/base.Throughput)
			delta = fmt.Sprintf("%+.0f", run.P50us-base.P50us)
		}
		up := cpu(run.UpstreamCPU)
		if run.ServerIsUpstream {
			up = "(is the server)"
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %.1f | %d | %d | %s | %s |\n",
			r.title(run.Scenario), run.Concurrency, f0(run.Throughput), f0(run.P50us), f0(run.P90us), f0(run.P99us),
			cpu(run.ServerCPU), up, cpu(run.ClientCPU), run.ServerPeakMB, run.Errors, run.Wrong, ratio, delta)
	}
	if c := r.Catalog; c != nil {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "Catalog scale (%d tools, %d KB of YAML): parse and validate %.1f ms (%.1f MB allocated); `toolbus serve` start to ready %.0f ms, peak RSS %.1f MB; `tools/list` (%d tools, %d KB) over %d calls, including the client's JSON decoding: p50 %.0f µs, p99 %.0f µs, %d errors.",
			c.Tools, c.CatalogBytes>>10, c.ParseMs, c.ParseAllocMB, c.StartupMs, c.ServerPeakMB, c.ListedTools, c.ListResponseBytes>>10, c.ListCalls, c.ListP50us, c.ListP99us, c.ListErrors)
		if c.ListAnswerP50us > 0 {
			fmt.Fprintf(w, " Answer received whole (request sent to last byte, before decoding): p50 %.0f µs, p99 %.0f µs.", c.ListAnswerP50us, c.ListAnswerP99us)
		}
		if c.OpenAPIImport != "" {
			fmt.Fprintf(w, " Large OpenAPI import: %s.", c.OpenAPIImport)
		}
		fmt.Fprintln(w)
	}
	for _, im := range r.catalogImports() {
		if im.Error != "" {
			fmt.Fprintf(w, "\nOpenAPI import %s (%s): %s\n", im.Name, im.File, im.Error)
			continue
		}
		fmt.Fprintf(w, "\nOpenAPI import %s (%.1f MB, `catalog.Load`, %d tools): %.0f ms (slowest of %d: %.0f ms), %.0f MB Go heap allocated, %.0f MB live after GC, child peak RSS %.0f MB\n",
			im.Name, float64(im.SpecBytes)/1e6, im.Tools, im.LoadMs, im.Runs, im.LoadMsMax, im.AllocMB, im.RetainedMB, im.PeakRSSMB)
	}
	if wh := r.Webhooks; wh != nil && len(wh.Runs) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "Webhooks (%s):\n\n", wh.Note)
		fmt.Fprintln(w, "| Load | Body | Senders | Target/s | Acked/s | p50 µs | p90 µs | p99 µs | max µs | Server CPU s/1k | Generator CPU s/1k | Server peak RSS MB | Errors | Late |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
		for _, x := range wh.Runs {
			tr := "—"
			if x.TargetRate > 0 {
				tr = f0(x.TargetRate)
			}
			fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %.1f | %d | %d |\n",
				x.Mode, bodySize(x.BodyBytes), x.Senders, tr, f0(x.Rate), f0(x.P50us), f0(x.P90us), f0(x.P99us), f0(x.MaxUs),
				cpu(x.ServerCPU), cpu(x.ClientCPU), x.PeakRSSMB, x.Errors, x.Late)
		}
		if wh.PerKBus != 0 {
			fmt.Fprintf(w, "\np50 slope per KB of body (closed loop, smallest to largest body): %.2f µs/KB at the full sender count, %.2f µs/KB at one sender", wh.PerKBus, wh.PerKB1us)
			if wh.PerKBFloorus != 0 {
				fmt.Fprintf(w, "; the floor (the same posts to a server that only reads the body) %.2f µs/KB at one sender", wh.PerKBFloorus)
			}
			fmt.Fprintln(w)
		}
		for _, x := range wh.Runs {
			for _, s := range x.Samples {
				fmt.Fprintf(w, "- %s %s error: %s\n", x.Mode, bodySize(x.BodyBytes), s)
			}
		}
	}
	if len(r.Budget) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| Budget target (design §6) | Measured | Verdict |")
		fmt.Fprintln(w, "|---|---|---|")
		for _, b := range r.Budget {
			fmt.Fprintf(w, "| %s | %s | %s |\n", b.Target, b.Measured, b.Verdict)
		}
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintln(w)
		for _, s := range r.Skipped {
			fmt.Fprintf(w, "- Skipped **%s**: %s\n", s.Scenario, s.Reason)
		}
	}
	var notes []string
	for _, s := range r.Titles {
		if s.Note != "" {
			notes = append(notes, fmt.Sprintf("%s: %s", s.Title, s.Note))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Notes: "+strings.Join(notes, "; ")+".")
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w)
		fmt.Fprintln(w, n)
	}
}

func (r *Report) catalogImports() []OpenAPIImport {
	if r.Catalog == nil {
		return nil
	}
	return r.Catalog.Imports
}

func clientName(c string) string {
	if c == "sdk" {
		return "official go-sdk client, one session per worker"
	}
	return "hand-written Streamable HTTP client (bench/target/raw.go), one session per worker"
}

func secs(s float64) string { return fmt.Sprintf("%gs", s) }

func payload(n int) string {
	if n == 0 {
		return "short ids (~20 B)"
	}
	return fmt.Sprintf("ids padded to %d B", n)
}

// Scenarios returns the names of the scenarios that have runs, in order.
func (r *Report) Scenarios() []string {
	var out []string
	for _, run := range r.Runs {
		if !slices.Contains(out, run.Scenario) {
			out = append(out, run.Scenario)
		}
	}
	return out
}

func bodySize(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}
