package events

import (
	"encoding/json"
	"math"
	"strconv"
	"sync"
)

// Every webhook delivery publishes a Webhook summary, so at thousands of
// deliveries per second encoding/json's reflection was a few percent of
// the ingest's CPU. appendJSON writes the same bytes directly; anything it
// does not handle byte for byte like encoding/json (a string that needs
// escaping, a time outside years 0-9999, a non-finite number) makes it
// give up, and Publish then uses encoding/json. FuzzWebhookJSON checks that
// both agree.

// jsonAppender is a summary that can encode itself without reflection; ok
// is false when it cannot, and b is then to be discarded.
type jsonAppender interface {
	appendJSON(b []byte) (_ []byte, ok bool)
}

var _ jsonAppender = (*Webhook)(nil)

func (w *Webhook) appendJSON(b []byte) ([]byte, bool) {
	if w == nil {
		return b, false
	}
	b = append(b, `{"time":"`...)
	b, err := w.Time.AppendText(b)
	if err != nil {
		return b, false
	}
	b = append(b, '"')
	ok := true
	b, ok = appendMember(b, `,"source":`, w.Source, ok)
	if w.Type != "" {
		b, ok = appendMember(b, `,"type":`, w.Type, ok)
	}
	if w.EventID != "" {
		b, ok = appendMember(b, `,"event_id":`, w.EventID, ok)
	}
	b, ok = appendMember(b, `,"outcome":`, w.Outcome, ok)
	if w.Reason != "" {
		b, ok = appendMember(b, `,"reason":`, w.Reason, ok)
	}
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(w.Status), 10)
	if w.Seq != 0 {
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, w.Seq, 10)
	}
	b = append(b, `,"duration_ms":`...)
	b, fok := appendFloat(b, w.DurationMS)
	if w.Instance != "" {
		b, ok = appendMember(b, `,"instance":`, w.Instance, ok)
	}
	return append(b, '}'), ok && fok
}

// appendMember appends the member name (with its comma and colon) and the
// string s, if s needs no escaping.
func appendMember(b []byte, name, s string, ok bool) ([]byte, bool) {
	b = append(b, name...)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		// encoding/json escapes quotes, backslashes, control characters
		// and <, > and &; non-ASCII text is left to it too (U+2028,
		// U+2029 and invalid UTF-8 are rewritten).
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			ok = false
			break
		}
	}
	b = append(b, s...)
	return append(b, '"'), ok
}

// appendFloat formats f as encoding/json does (ES6 number formatting).
func appendFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

// encodeBufs keeps the buffers summaries are encoded into: NATS copies a
// message before Publish returns.
var encodeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// publishEncoded encodes v (with appendJSON when it can) and hands the
// bytes to send, which must not keep them.
func publishEncoded(v any, send func([]byte) error) error {
	if a, ok := v.(jsonAppender); ok {
		p := encodeBufs.Get().(*[]byte)
		defer encodeBufs.Put(p)
		if b, ok := a.appendJSON((*p)[:0]); ok {
			*p = b[:0]
			return send(b)
		}
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return send(data)
}
