package toolerr

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// Limits on text taken from upstream answers.
const (
	// maxDetail bounds an upstream message quoted in a tool error: enough
	// for "customer 42 not found" or a validation message, not a stack trace.
	maxDetail = 300
	// maxErrorBody bounds how much of an error body is parsed for a message.
	maxErrorBody = 64 << 10
	// MaxRetryAfter caps a Retry-After value; anything longer is treated as
	// this long, since no caller should wait days on one tool call.
	MaxRetryAfter = 24 * time.Hour
)

// FromHTTP classifies a non-2xx upstream answer. It quotes the upstream's
// own message when the body has one in a common JSON error shape (or is
// short plain text), and reads Retry-After on 429 and 503. A 2xx status
// gives nil. header must be the response's header, never the request's.
func FromHTTP(tool, upstream string, status int, header http.Header, body []byte) *ToolError {
	return fromHTTP(tool, upstream, status, header, body, time.Now())
}

func fromHTTP(tool, upstream string, status int, header http.Header, body []byte, now time.Time) *ToolError {
	if status >= 200 && status < 300 {
		return nil
	}
	detail := UpstreamMessage(header.Get("Content-Type"), body)
	retryAfter, _ := ParseRetryAfter(header.Get("Retry-After"), now)
	st := int32(status)
	switch {
	case status == http.StatusNotFound || status == http.StatusGone:
		return NotFound(tool, upstream, status, detail)
	case status == http.StatusTooManyRequests:
		return RateLimited(tool, upstream, status, retryAfter)
	case status == http.StatusUnauthorized:
		return &ToolError{
			Class:          toolbusv1.ErrorClass_ERROR_CLASS_UNAUTHENTICATED,
			Code:           CodeUnauthenticated,
			Message:        "upstream " + upstream + " refused Toolbus's credentials (401) for " + tool + quoted(detail) + "; " + noRetry + " until the upstream credentials in the catalog are fixed",
			UpstreamStatus: st,
		}
	case status == http.StatusForbidden:
		return &ToolError{
			Class:          toolbusv1.ErrorClass_ERROR_CLASS_PERMISSION_DENIED,
			Code:           CodePermissionDenied,
			Message:        "upstream " + upstream + " denied permission (403) for " + tool + quoted(detail) + "; " + noRetry,
			UpstreamStatus: st,
		}
	case status == http.StatusRequestTimeout:
		return &ToolError{
			Class:          toolbusv1.ErrorClass_ERROR_CLASS_TIMEOUT,
			Code:           CodeUpstreamTimeout,
			Message:        "upstream " + upstream + " timed out (408) on " + tool + quoted(detail) + "; " + retryLater,
			Retryable:      true,
			RetryAfter:     duration(retryAfter),
			UpstreamStatus: st,
		}
	case status == http.StatusConflict:
		return &ToolError{
			Class:          toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_REJECTED,
			Code:           CodeConflict,
			Message:        "upstream " + upstream + " reported a conflict (409) for " + tool + quoted(detail) + "; read the current state before trying again, retrying the same call will not help",
			UpstreamStatus: st,
		}
	case status >= 400 && status < 500:
		return &ToolError{
			Class:          toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_REJECTED,
			Code:           CodeRejected,
			Message:        "upstream " + upstream + " rejected " + tool + " with " + statusText(status) + quoted(detail) + "; retrying with the same arguments will not help",
			UpstreamStatus: st,
		}
	case status >= 500 && status < 600:
		return UpstreamFailed(tool, upstream, status, detail, retryAfter)
	}
	// 1xx and 3xx that reached here were not handled by the HTTP client
	// (a redirect without Location, 304 without a conditional request).
	return &ToolError{
		Class:          toolbusv1.ErrorClass_ERROR_CLASS_BAD_UPSTREAM_RESPONSE,
		Code:           CodeBadResponse,
		Message:        "upstream " + upstream + " answered " + statusText(status) + " to " + tool + ", which is not a usable answer; " + noRetry,
		UpstreamStatus: st,
	}
}

// UpstreamMessage extracts a human message from an error body. It knows
// these shapes: {"error":{"message":...}}, {"error":"..."}, {"message":...},
// {"errors":[{"message":...}]}, {"detail":...} and RFC 9457 problem details
// (title and detail); plain text bodies are used when short. The result is
// one line without control characters, at most maxDetail characters, or ""
// when nothing usable was found.
func UpstreamMessage(contentType string, body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return ""
	}
	if len(body) > maxErrorBody {
		// Truncated JSON does not parse: fall through to nothing rather
		// than quoting half an object.
		body = body[:maxErrorBody]
	}
	if body[0] == '{' {
		return clean(messageFromJSON(body), maxDetail)
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "text/plain" && utf8.Valid(body) {
		line, _, _ := bytes.Cut(body, []byte("\n"))
		return clean(string(line), maxDetail)
	}
	return ""
}

// errorShape holds the fields of every shape UpstreamMessage knows; each
// is decoded lazily so a field of an unexpected type is just skipped.
type errorShape struct {
	Error   json.RawMessage `json:"error"`
	Message json.RawMessage `json:"message"`
	Errors  json.RawMessage `json:"errors"`
	Detail  json.RawMessage `json:"detail"`
	Title   json.RawMessage `json:"title"`
}

func messageFromJSON(body []byte) string {
	var e errorShape
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	if s := jsonString(e.Error); s != "" {
		return s
	}
	var nested struct {
		Message json.RawMessage `json:"message"`
	}
	if len(e.Error) > 0 && e.Error[0] == '{' && json.Unmarshal(e.Error, &nested) == nil {
		if s := jsonString(nested.Message); s != "" {
			return s
		}
	}
	if s := jsonString(e.Message); s != "" {
		return s
	}
	var list []struct {
		Message json.RawMessage `json:"message"`
	}
	if len(e.Errors) > 0 && e.Errors[0] == '[' && json.Unmarshal(e.Errors, &list) == nil {
		var msgs []string
		for _, m := range list {
			if s := jsonString(m.Message); s != "" {
				msgs = append(msgs, s)
			}
		}
		if len(msgs) > 0 {
			return strings.Join(msgs, "; ")
		}
	}
	title, detail := jsonString(e.Title), jsonString(e.Detail)
	switch {
	case title != "" && detail != "" && !strings.Contains(detail, title):
		return title + ": " + detail
	case detail != "":
		return detail
	}
	return title
}

// jsonString returns raw as a string when it is a JSON string.
func jsonString(raw json.RawMessage) string {
	if len(raw) == 0 || raw[0] != '"' {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// clean makes s one line: control characters become spaces, runs of
// spaces collapse, invalid UTF-8 is dropped, and the result is cut to max
// runes with an ellipsis.
func clean(s string, max int) string {
	var b strings.Builder
	b.Grow(min(len(s), max*2))
	n, space := 0, false
	for _, r := range strings.ToValidUTF8(s, "") {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Cf, r) {
			space = b.Len() > 0
			continue
		}
		if n >= max {
			b.WriteString("…")
			return b.String()
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// ParseRetryAfter reads a Retry-After value: delay seconds or an HTTP-date
// (relative to now). It reports false when v is empty or malformed. A date
// in the past gives 0 and true; values are capped at MaxRetryAfter.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return MaxRetryAfter, true
			}
			return 0, false
		}
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	switch {
	case d < 0:
		return 0, true
	case d > MaxRetryAfter:
		return MaxRetryAfter, true
	}
	// HTTP-dates have whole seconds; round up so a caller never comes back
	// a fraction too early.
	if r := d % time.Second; r > 0 {
		d += time.Second - r
	}
	return d, true
}
