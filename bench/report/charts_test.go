package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteCharts(t *testing.T) {
	run := func(scenario string, c int, tput, p99 float64) Run {
		return Run{Scenario: scenario, Concurrency: c, Calls: 10, Throughput: tput, P99us: p99}
	}
	t.Run("one concurrency level draws nothing", func(t *testing.T) {
		r := &Report{Settings: Settings{Concurrency: []int{1}}, Runs: []Run{run("toolbus", 1, 900, 4000)}}
		dir := t.TempDir()
		files, err := r.WriteCharts(dir)
		if err != nil || len(files) != 0 {
			t.Fatalf("WriteCharts = %v, %v; want no files and no error", files, err)
		}
	})
	t.Run("two levels draw both charts", func(t *testing.T) {
		r := &Report{Settings: Settings{Concurrency: []int{1, 16}}, Runs: []Run{
			run("plain", 1, 1000, 4000), run("plain", 16, 2700, 15000),
			run("toolbus", 1, 900, 3600), run("toolbus", 16, 3100, 12000),
		}}
		dir := t.TempDir()
		files, err := r.WriteCharts(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != 2 {
			t.Fatalf("files = %v, want throughput.svg and p99.svg", files)
		}
		svg, err := os.ReadFile(filepath.Join(dir, "throughput.svg"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(svg), "<svg") {
			t.Errorf("throughput.svg is not an SVG: %.80q", svg)
		}
	})
}
