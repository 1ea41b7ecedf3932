package report

import (
	"fmt"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// WriteCharts draws throughput and p99 latency against concurrency, one line
// per scenario, as throughput.svg and p99.svg in dir. It returns the files.
// A chart needs at least two concurrency levels: with one there is no line
// to draw (and a log axis over a single value has no range), so none is
// written.
func (r *Report) WriteCharts(dir string) ([]string, error) {
	levels := map[int]bool{}
	for _, run := range r.Runs {
		if run.Concurrency > 0 && run.Throughput > 0 {
			levels[run.Concurrency] = true
		}
	}
	if len(levels) < 2 {
		return nil, nil
	}
	charts := []struct {
		file, title, y string
		log            bool
		value          func(Run) float64
	}{
		{"throughput.svg", "Tool calls per second (higher is better)", "calls/s", false, func(r Run) float64 { return r.Throughput }},
		{"p99.svg", "p99 latency (lower is better)", "p99 latency, ms (log scale)", true, func(r Run) float64 { return r.P99us / 1000 }},
	}
	var files []string
	for _, c := range charts {
		p := plot.New()
		p.Title.Text = c.title
		p.X.Label.Text = "concurrent clients (log scale)"
		p.Y.Label.Text = c.y
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = concurrencyTicks(r.Settings.Concurrency)
		if c.log {
			p.Y.Scale = plot.LogScale{}
			p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		} else {
			p.Y.Min = 0
		}
		p.Legend.Top = true
		p.Legend.Left = true
		var args []any
		for _, s := range r.Scenarios() {
			var pts plotter.XYs
			for _, run := range r.Runs {
				if run.Scenario == s && run.Throughput > 0 {
					pts = append(pts, plotter.XY{X: float64(run.Concurrency), Y: c.value(run)})
				}
			}
			if len(pts) > 0 {
				args = append(args, r.title(s), pts)
			}
		}
		if len(args) == 0 {
			continue
		}
		if err := plotutil.AddLinePoints(p, args...); err != nil {
			return files, fmt.Errorf("chart %s: %w", c.file, err)
		}
		path := filepath.Join(dir, c.file)
		if err := p.Save(7*vg.Inch, 4.5*vg.Inch, path); err != nil {
			return files, fmt.Errorf("chart %s: %w", c.file, err)
		}
		files = append(files, path)
	}
	return files, nil
}

// concurrencyTicks labels exactly the concurrencies that were measured.
func concurrencyTicks(cs []int) plot.ConstantTicks {
	var t plot.ConstantTicks
	for _, c := range cs {
		if c > 0 {
			t = append(t, plot.Tick{Value: float64(c), Label: strconv.Itoa(c)})
		}
	}
	return t
}
