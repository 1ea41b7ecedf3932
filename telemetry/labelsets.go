package telemetry

import (
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Building an attribute.Set sorts and hashes its labels and allocates: a
// few microseconds on every call's hot path, several times per call. The
// label combinations a process records are few (tools × upstreams ×
// outcomes), so each measurement option is built once and reused.

// maxLabelSets bounds the cache: past it, options are built per call as
// before, so an unexpected flood of label values costs CPU, not memory.
const maxLabelSets = 4096

// labelKey identifies one label combination of one label schema (kind).
type labelKey struct {
	kind       uint8
	a, b, c, d string
}

// Label schemas (the keys of labelKey's values, in order).
const (
	kindCall         uint8 = iota + 1 // tool, upstream, outcome, via
	kindToolUpstream                  // tool, upstream
	kindExecution                     // tool, upstream, outcome
	kindWebhook                       // source, outcome
	kindProjected                     // projection, source, outcome
	kindApplied                       // projection, source
)

type labelSets struct {
	m sync.Map // labelKey → metric.MeasurementOption
	n atomic.Int64
}

var sets labelSets

// option returns the measurement option of k, built from its labels.
func (c *labelSets) option(k labelKey) metric.MeasurementOption {
	if v, ok := c.m.Load(k); ok {
		return v.(metric.MeasurementOption)
	}
	opt := metric.WithAttributeSet(k.set())
	if c.n.Load() < maxLabelSets {
		if _, loaded := c.m.LoadOrStore(k, opt); !loaded {
			c.n.Add(1)
		}
	}
	return opt
}

// set builds the attribute set of k.
func (k labelKey) set() attribute.Set {
	switch k.kind {
	case kindCall:
		return attribute.NewSet(attribute.String(LabelTool, k.a), attribute.String(LabelUpstream, k.b),
			attribute.String(LabelOutcome, k.c), attribute.String(LabelVia, k.d))
	case kindToolUpstream:
		return attribute.NewSet(attribute.String(LabelTool, k.a), attribute.String(LabelUpstream, k.b))
	case kindExecution:
		return attribute.NewSet(attribute.String(LabelTool, k.a), attribute.String(LabelUpstream, k.b),
			attribute.String(LabelOutcome, k.c))
	case kindWebhook:
		return attribute.NewSet(attribute.String(LabelSource, k.a), attribute.String(LabelOutcome, k.b))
	case kindProjected:
		return attribute.NewSet(attribute.String(LabelProjection, k.a), attribute.String(LabelSource, k.b),
			attribute.String(LabelOutcome, k.c))
	case kindApplied:
		return attribute.NewSet(attribute.String(LabelProjection, k.a), attribute.String(LabelSource, k.b))
	}
	return attribute.NewSet() // unreachable: kinds are this file's constants
}
