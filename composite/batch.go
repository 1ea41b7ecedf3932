package composite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"

	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// itemResult is the outcome of one id of a batch call.
type itemResult struct {
	ID     any             `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *itemError      `json:"error,omitempty"`
}

type itemError struct {
	Code      string `json:"code"`
	Class     string `json:"class"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
}

func errorOf(te *toolbusv1.ToolError) *itemError {
	n, ok := toolbusv1.ErrorClass_name[int32(te.GetClass())]
	if !ok {
		n = "ERROR_CLASS_UNSPECIFIED"
	}
	return &itemError{Code: te.GetCode(), Class: strings.ToLower(strings.TrimPrefix(n, "ERROR_CLASS_")), Message: te.GetMessage(), Retryable: te.GetRetryable()}
}

// batchResult is the structured result of a batch call.
type batchResult struct {
	Results   []itemResult `json:"results"`
	Succeeded int          `json:"succeeded"`
	Failed    int          `json:"failed"`
}

func (r *Runner) runBatch(ctx context.Context, c Call) (*toolbusv1.ToolResult, error) {
	b := c.Tool.Batch
	ids, _ := c.Args[b.List].([]any)
	common := make(map[string]any, len(c.Args))
	for k, v := range c.Args {
		if k != b.List {
			common[k] = v
		}
	}
	items := make([]itemResult, len(ids))
	for i, id := range ids {
		items[i].ID = id
	}
	var jobs []func(ctx context.Context)
	switch b.Mode {
	case catalog.BatchUpstream:
		jobs = r.upstreamJobs(c, b, ids, common, items)
	default:
		for i, id := range ids {
			jobs = append(jobs, func(ctx context.Context) {
				args := withArg(common, b.Argument, id)
				o := r.call(ctx, "batch.call "+b.Tool.Name, b.Tool, args, stepKey(c.IdempotencyKey, strconv.Itoa(i)),
					attribute.String("toolbus.batch", c.Tool.Name), attribute.Int("toolbus.batch.index", i))
				if o.failed() {
					items[i].Error = errorOf(o.te)
					return
				}
				items[i].OK, items[i].Result = true, resultValue(o.res)
			})
		}
	}
	runBounded(ctx, b.MaxParallel, jobs)
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil, ctx.Err()
	}
	out := batchResult{Results: items}
	for _, it := range items {
		if it.OK {
			out.Succeeded++
		} else {
			out.Failed++
		}
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("composite: encode batch result: %w", err)
	}
	res := &toolbusv1.ToolResult{Json: raw}
	if out.Failed > 0 {
		res.Text = fmt.Sprintf("PARTIAL RESULT: %d of %d ids failed; see each result's error", out.Failed, len(items))
	}
	return res, nil
}

// runBounded runs jobs with at most n at a time and returns when all have
// returned. Jobs not started when ctx ends still run, and see ctx's error.
func runBounded(ctx context.Context, n int, jobs []func(context.Context)) {
	if n < 1 {
		n = 1
	}
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, job := range jobs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			job(ctx)
		}()
	}
	wg.Wait()
}

func withArg(common map[string]any, name string, v any) map[string]any {
	args := make(map[string]any, len(common)+1)
	for k, x := range common {
		args[k] = x
	}
	args[name] = v
	return args
}

// idText is an id's text, for matching it against ids in an answer.
func idText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// upstreamJobs splits ids into chunks of MaxBatch, one target call each,
// and matches the answer's items to the ids.
func (r *Runner) upstreamJobs(c Call, b *catalog.Batch, ids []any, common map[string]any, items []itemResult) []func(context.Context) {
	var jobs []func(context.Context)
	var chunk []int
	flush := func(idx []int) {
		if len(idx) == 0 {
			return
		}
		n := len(jobs)
		jobs = append(jobs, func(ctx context.Context) {
			var v any
			if b.Join != "" {
				parts := make([]string, len(idx))
				for j, i := range idx {
					parts[j] = idText(ids[i])
				}
				v = strings.Join(parts, b.Join)
			} else {
				list := make([]any, len(idx))
				for j, i := range idx {
					list[j] = ids[i]
				}
				v = list
			}
			o := r.call(ctx, "batch.call "+b.Tool.Name, b.Tool, withArg(common, b.Argument, v), stepKey(c.IdempotencyKey, "chunk"+strconv.Itoa(n)),
				attribute.String("toolbus.batch", c.Tool.Name), attribute.Int("toolbus.batch.chunk", n), attribute.Int("toolbus.batch.ids", len(idx)))
			if o.failed() {
				e := errorOf(o.te)
				for _, i := range idx {
					items[i].Error = e
				}
				return
			}
			found, err := indexItems(resultValue(o.res), b)
			if err != nil {
				e := &itemError{Code: "bad_upstream_response", Class: "bad_upstream_response",
					Message: fmt.Sprintf("the answer of %s could not be split per id: %v", b.Tool.Name, err)}
				for _, i := range idx {
					items[i].Error = e
				}
				return
			}
			for _, i := range idx {
				if item, ok := found[idText(ids[i])]; ok {
					items[i].OK, items[i].Result = true, item
					continue
				}
				items[i].Error = &itemError{Code: "upstream_not_found", Class: "not_found",
					Message: fmt.Sprintf("id %s is not in the answer of %s (upstream %s); it may not exist, retrying will not help", idText(ids[i]), b.Tool.Name, b.Tool.Upstream.Name)}
			}
		})
	}
	for i, id := range ids {
		if b.Join != "" && strings.Contains(idText(id), b.Join) {
			items[i].Error = &itemError{Code: "invalid_argument", Class: "invalid_argument",
				Message: fmt.Sprintf("invalid argument %s/%d for %s: an id must not contain %q; fix the id and call again", b.List, i, c.Tool.Name, b.Join)}
			continue
		}
		chunk = append(chunk, i)
		if len(chunk) == b.MaxBatch {
			flush(chunk)
			chunk = nil
		}
	}
	flush(chunk)
	return jobs
}

// indexItems finds the item list of an answer (at b.Results, else the
// answer itself or its "result") and indexes the items by their id.
func indexItems(raw json.RawMessage, b *catalog.Batch) (map[string]json.RawMessage, error) {
	v := raw
	path := catalog.ItemPath(b.Results)
	for _, k := range path {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(v, &obj); err != nil {
			return nil, fmt.Errorf("%s is not an object", b.Results)
		}
		var ok bool
		if v, ok = obj[k]; !ok {
			return nil, fmt.Errorf("the answer has no %s", b.Results)
		}
	}
	var list []json.RawMessage
	if err := json.Unmarshal(v, &list); err != nil {
		var obj map[string]json.RawMessage
		if len(path) > 0 || json.Unmarshal(v, &obj) != nil || json.Unmarshal(obj["result"], &list) != nil {
			return nil, errors.New("the answer holds no list of items (set batch.results)")
		}
	}
	idPath := catalog.ItemPath(b.IDField)
	out := make(map[string]json.RawMessage, len(list))
	for _, item := range list {
		cur := any(decode(item))
		for _, k := range idPath {
			m, ok := cur.(map[string]any)
			if !ok {
				cur = nil
				break
			}
			cur = m[k]
		}
		if cur == nil {
			continue
		}
		id := idText(normalizedText(cur))
		if _, dup := out[id]; !dup {
			out[id] = item
		}
	}
	return out, nil
}

// normalizedText turns jq-normalised numbers back into their text.
func normalizedText(v any) any {
	switch v := v.(type) {
	case int:
		return strconv.Itoa(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return v
}
