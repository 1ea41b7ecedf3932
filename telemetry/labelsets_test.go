package telemetry

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// points returns "name{k=v,...}=value" for every counter data point.
func points(t *testing.T, r *sdkmetric.ManualReader) []string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				var kv []string
				for _, a := range dp.Attributes.ToSlice() {
					kv = append(kv, string(a.Key)+"="+a.Value.AsString())
				}
				out = append(out, m.Name+"{"+strings.Join(kv, ",")+"}="+strconv.FormatInt(dp.Value, 10))
			}
		}
	}
	sort.Strings(out)
	return out
}

// Cached label sets must give exactly the data points fresh ones gave: the
// right labels on the right series, whichever schema, also past the cap.
func TestLabelSetsKeepSeriesApart(t *testing.T) {
	for _, full := range []bool{false, true} {
		if full {
			sets.n.Store(maxLabelSets) // nothing more is cached: built per call
		}
		r := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
		cm, err := NewCallMetrics(mp)
		if err != nil {
			t.Fatal(err)
		}
		wm, err := NewWebhookMetrics(mp)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		cm.Record(ctx, "lookup", "crm", "ok", "mcp", time.Millisecond)
		cm.Record(ctx, "lookup", "crm", "ok", "mcp", time.Millisecond)
		cm.Record(ctx, "lookup", "crm", "timeout", "mcp", time.Millisecond)
		cm.Record(ctx, "lookup", "billing", "ok", "grpc", time.Millisecond)
		// Same strings under another schema must not share a series.
		wm.Received(ctx, "lookup", "crm")
		wm.Projected(ctx, "lookup", "crm", "ok")
		got := strings.Join(points(t, r), "\n")
		want := strings.Join([]string{
			"toolbus.calls{outcome=ok,tool=lookup,upstream=billing,via=grpc}=1",
			"toolbus.calls{outcome=ok,tool=lookup,upstream=crm,via=mcp}=2",
			"toolbus.calls{outcome=timeout,tool=lookup,upstream=crm,via=mcp}=1",
			"toolbus.projection.events{outcome=ok,projection=lookup,source=crm}=1",
			"toolbus.webhooks{outcome=crm,source=lookup}=1",
		}, "\n")
		if got != want {
			t.Errorf("cap reached %v: data points\n%s\nwant\n%s", full, got, want)
		}
		sets.n.Store(0)
	}
}

func TestLabelKeySetMatchesFreshSet(t *testing.T) {
	k := labelKey{kind: kindExecution, a: "t", b: "u", c: "ok"}
	want := attribute.NewSet(attribute.String(LabelTool, "t"), attribute.String(LabelUpstream, "u"), attribute.String(LabelOutcome, "ok"))
	if got := k.set(); !got.Equals(&want) {
		t.Errorf("set = %v, want %v", got.Encoded(attribute.DefaultEncoder()), want.Encoded(attribute.DefaultEncoder()))
	}
}

func BenchmarkCallMetricsRecord(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	cm, err := NewCallMetrics(mp)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		cm.Record(ctx, "lookup", "crm", "ok", "mcp", time.Millisecond)
	}
}

// BenchmarkCallMetricsRecordFreshSet is what Record cost before the cache:
// the attribute set built on every call.
func BenchmarkCallMetricsRecordFreshSet(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	cm, err := NewCallMetrics(mp)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		set := metric.WithAttributeSet(attribute.NewSet(
			attribute.String(LabelTool, "lookup"), attribute.String(LabelUpstream, "crm"),
			attribute.String(LabelOutcome, "ok"), attribute.String(LabelVia, "mcp")))
		cm.calls.Add(ctx, 1, set)
		cm.duration.Record(ctx, time.Millisecond.Seconds(), set)
	}
}
