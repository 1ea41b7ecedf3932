// Package shape applies a tool's response shaping (catalog field response)
// to the answers workers send back: the jq expression, dropped fields, and
// the size cap, over which the first part is returned with a continuation
// handle and the whole answer is kept in the toolbus_continuations bucket.
//
// It runs in the workers, after pagination merged the pages, so that what
// crosses the bus is already what the model will see. It must not call
// upstreams.
package shape

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/toolerr"
)

// Store keeps capped answers; *bus.Continuations implements it.
type Store interface {
	Put(ctx context.Context, text []byte) (string, error)
}

var _ Store = (*bus.Continuations)(nil)

// Middleware shapes the results of next for the tools lookup returns. A
// tool without response shaping passes through untouched.
func Middleware(lookup func(name string) (*catalog.Tool, bool), store Store) func(bus.CallHandler) bus.CallHandler {
	return func(next bus.CallHandler) bus.CallHandler {
		return func(ctx context.Context, call *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
			res, err := next(ctx, call, d)
			if err != nil || res == nil || res.Error != nil {
				return res, err
			}
			t, ok := lookup(call.Tool)
			if !ok || t.Response == nil {
				return res, nil
			}
			Result(ctx, t, store, res)
			return res, nil
		}
	}
}

// Result shapes res in place.
func Result(ctx context.Context, t *catalog.Tool, store Store, res *toolbusv1.ToolResult) {
	r := t.Response
	if len(res.Json) > 0 && (r.JQ != nil || len(r.Drop) > 0) {
		out, err := r.Shape(ctx, res.Json)
		if err != nil {
			res.Json = nil
			res.Error = toolerr.Internal(t.Name, fmt.Sprintf("the catalog's response shaping failed on this answer (%v); fix the tool's response.jq", err))
			return
		}
		res.Json = out
	}
	if r.MaxBytes <= 0 {
		return
	}
	full := res.Json
	if len(full) == 0 {
		full = []byte(res.Text)
	}
	if len(full) <= r.MaxBytes {
		return
	}
	id, err := store.Put(ctx, full)
	part, next := Part(full, 0, r.MaxBytes)
	res.Json = nil
	res.Text = string(part) + "\n\n" + Note(t.Name, 0, next, len(full), id, err)
}

// Part returns text[from:] cut to at most max bytes at a character
// boundary, and the offset where the next part starts.
func Part(text []byte, from, max int) ([]byte, int) {
	if from >= len(text) {
		return nil, len(text)
	}
	end := min(from+max, len(text))
	for end > from && end < len(text) && !utf8.RuneStart(text[end]) {
		end--
	}
	return text[from:end], end
}

// Note tells the model that it sees part of the answer and how to get the
// rest: the <tool>_continue tool with the handle "<id>:<offset>".
func Note(tool string, from, next, total int, id string, storeErr error) string {
	if next >= total {
		return fmt.Sprintf("[END OF RESULT: bytes %d–%d of %d; this was the last part.]", from+1, next, total)
	}
	if storeErr != nil || id == "" {
		return fmt.Sprintf("[TRUNCATED: this is bytes %d–%d of %d of the answer; the rest could not be kept, so narrow the request (filters, fewer fields) to see it.]", from+1, next, total)
	}
	return fmt.Sprintf("[TRUNCATED: this is bytes %d–%d of %d of the answer. Call %s%s with {\"continuation\": %q} for the next part.]",
		from+1, next, total, tool, catalog.ContinueSuffix, Handle(id, next))
}

// Handle is the continuation argument for the part of id starting at offset.
func Handle(id string, offset int) string { return id + ":" + strconv.Itoa(offset) }

// ParseHandle splits a continuation handle.
func ParseHandle(h string) (id string, offset int, ok bool) {
	id, off, found := strings.Cut(h, ":")
	if !found || id == "" {
		return "", 0, false
	}
	n, err := strconv.Atoi(off)
	if err != nil || n < 0 {
		return "", 0, false
	}
	return id, n, true
}
