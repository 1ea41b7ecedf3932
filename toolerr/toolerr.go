// Package toolerr provides the tool errors Toolbus returns to a model: each
// is a *toolbusv1.ToolError with a stable Code, an ErrorClass, whether
// retrying can help (and after how long), the upstream's HTTP status, and a
// one-line Message that names the tool and the upstream, says what happened
// and whether trying again could help.
//
// Messages are built only from the tool and upstream names, numbers, and
// text the upstream itself answered (cleaned and capped). This package must
// never be given request headers, request URLs or secrets, and it must not
// log: callers decide what to do with an error.
package toolerr

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// ToolError is the protobuf message every constructor returns.
type ToolError = toolbusv1.ToolError

// Stable codes. They are part of the contract with clients and dashboards:
// never change one, add new ones instead.
const (
	CodeInvalidArgument    = "invalid_argument"
	CodeUnknownTool        = "unknown_tool"
	CodeNotFound           = "upstream_not_found"
	CodeRejected           = "upstream_rejected"
	CodeConflict           = "upstream_conflict"
	CodeUnauthenticated    = "upstream_unauthenticated"
	CodePermissionDenied   = "upstream_permission_denied"
	CodeRateLimited        = "upstream_rate_limited"
	CodeUpstreamFailed     = "upstream_failed"
	CodeUnreachable        = "upstream_unreachable"
	CodeConnectionLost     = "upstream_connection_lost"
	CodeTimeout            = "timeout"
	CodeUpstreamTimeout    = "upstream_timeout"
	CodeCancelled          = "cancelled"
	CodeResponseTooLarge   = "response_too_large"
	CodeBadResponse        = "bad_upstream_response"
	CodeRedirectRefused    = "redirect_refused"
	CodeUnsupportedContent = "unsupported_content"
	CodeInternal           = "internal"
)

// Endings of messages: every message ends with one, so a model always learns
// whether trying again could help.
const (
	noRetry    = "retrying will not help"
	retryLater = "retrying later may help"
)

// InvalidArgument reports an argument that cannot be used to build the
// upstream request. field names the argument; problem says what is wrong
// with it, without quoting long values.
func InvalidArgument(tool, field, problem string) *ToolError {
	return &ToolError{
		Class:   toolbusv1.ErrorClass_ERROR_CLASS_INVALID_ARGUMENT,
		Code:    CodeInvalidArgument,
		Message: fmt.Sprintf("invalid argument %s for %s: %s; fix the argument and call again", field, tool, clean(problem, maxDetail)),
	}
}

// UnknownTool reports a call for a tool this worker's catalog does not hold
// (usually a catalog change that has not reached every replica yet).
func UnknownTool(tool, upstream string) *ToolError {
	return &ToolError{
		Class:   toolbusv1.ErrorClass_ERROR_CLASS_INVALID_ARGUMENT,
		Code:    CodeUnknownTool,
		Message: fmt.Sprintf("tool %s of upstream %s is not in this worker's catalog; list the tools again, retrying the same call will not help", tool, upstream),
	}
}

// NotFound reports a 404 or 410. detail is the upstream's own message, if
// any: it usually names what is missing ("customer 42 not found").
func NotFound(tool, upstream string, status int, detail string) *ToolError {
	msg := fmt.Sprintf("upstream %s answered %d to %s; the requested resource does not exist, %s", upstream, status, tool, noRetry)
	if detail != "" {
		msg = fmt.Sprintf("%s (upstream %s answered %d to %s); %s", detail, upstream, status, tool, noRetry)
	}
	return &ToolError{
		Class:          toolbusv1.ErrorClass_ERROR_CLASS_NOT_FOUND,
		Code:           CodeNotFound,
		Message:        msg,
		UpstreamStatus: int32(status),
	}
}

// RateLimited reports a 429 (or a Toolbus quota refusal when status is 0).
// retryAfter is zero when the upstream did not say how long to wait.
func RateLimited(tool, upstream string, status int, retryAfter time.Duration) *ToolError {
	var msg string
	switch {
	case retryAfter > 0:
		msg = fmt.Sprintf("upstream %s is rate limiting (%s, %s); retry after %s", upstream, statusOrQuota(status), tool, FormatDuration(retryAfter))
	default:
		msg = fmt.Sprintf("upstream %s is rate limiting (%s, %s); %s", upstream, statusOrQuota(status), tool, retryLater)
	}
	return &ToolError{
		Class:          toolbusv1.ErrorClass_ERROR_CLASS_RATE_LIMITED,
		Code:           CodeRateLimited,
		Message:        msg,
		Retryable:      true,
		RetryAfter:     duration(retryAfter),
		UpstreamStatus: int32(status),
	}
}

func statusOrQuota(status int) string {
	if status == 0 {
		return "Toolbus quota"
	}
	return fmt.Sprint(status)
}

// UpstreamFailed reports a 5xx answer. detail is the upstream's own message.
func UpstreamFailed(tool, upstream string, status int, detail string, retryAfter time.Duration) *ToolError {
	end := retryLater
	if retryAfter > 0 {
		end = "retry after " + FormatDuration(retryAfter)
	}
	return &ToolError{
		Class:          toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_FAILED,
		Code:           CodeUpstreamFailed,
		Message:        fmt.Sprintf("upstream %s failed with %s (%s)%s; %s", upstream, statusText(status), tool, quoted(detail), end),
		Retryable:      true,
		RetryAfter:     duration(retryAfter),
		UpstreamStatus: int32(status),
	}
}

// Timeout reports that the call's deadline passed before the upstream
// answered. budget is the time the call had.
func Timeout(tool, upstream string, budget time.Duration) *ToolError {
	return &ToolError{
		Class:     toolbusv1.ErrorClass_ERROR_CLASS_TIMEOUT,
		Code:      CodeTimeout,
		Message:   fmt.Sprintf("upstream %s did not answer within %s (%s); %s", upstream, FormatDuration(budget), tool, retryLater),
		Retryable: true,
	}
}

// Cancelled reports that the caller gave up on the call.
func Cancelled(tool, upstream string) *ToolError {
	return &ToolError{
		Class:     toolbusv1.ErrorClass_ERROR_CLASS_CANCELLED,
		Code:      CodeCancelled,
		Message:   fmt.Sprintf("the call to %s (upstream %s) was cancelled before it completed; call again if the result is still needed", tool, upstream),
		Retryable: true,
	}
}

// Unreachable reports that no request reached the upstream: connection
// refused, DNS failure, TLS handshake failure. reason is short and must
// hold no URL. Retrying is safe because nothing was performed.
func Unreachable(tool, upstream, reason string) *ToolError {
	return &ToolError{
		Class:     toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_UNREACHABLE,
		Code:      CodeUnreachable,
		Message:   fmt.Sprintf("upstream %s could not be reached (%s); the request for %s never reached the upstream, %s", upstream, clean(reason, maxDetail), tool, retryLater),
		Retryable: true,
	}
}

// ConnectionLost reports a connection that broke after the request may have
// been sent (reset, closed early): the upstream may or may not have
// performed it, which matters for mutating tools.
func ConnectionLost(tool, upstream, reason string) *ToolError {
	return &ToolError{
		Class:     toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_UNREACHABLE,
		Code:      CodeConnectionLost,
		Message:   fmt.Sprintf("the connection to upstream %s broke during %s (%s); the upstream may or may not have performed it, %s", upstream, tool, clean(reason, maxDetail), retryLater),
		Retryable: true,
	}
}

// ResponseTooLarge reports an answer larger than the upstream's
// max_response_bytes. size is the announced or counted size, or a negative
// number when only "more than limit" is known.
func ResponseTooLarge(tool, upstream string, size, limit int64) *ToolError {
	got := "more than the " + FormatBytes(limit) + " limit"
	if size > limit {
		got = FormatBytes(size) + ", more than the " + FormatBytes(limit) + " limit"
	}
	return &ToolError{
		Class:   toolbusv1.ErrorClass_ERROR_CLASS_RESPONSE_TOO_LARGE,
		Code:    CodeResponseTooLarge,
		Message: fmt.Sprintf("upstream %s answered %s for %s; narrow the request (filters, page size)", upstream, got, tool),
	}
}

// BadResponse reports an answer Toolbus could not understand, such as a
// JSON content type with a body that is not JSON.
func BadResponse(tool, upstream string, status int, problem string) *ToolError {
	return &ToolError{
		Class:          toolbusv1.ErrorClass_ERROR_CLASS_BAD_UPSTREAM_RESPONSE,
		Code:           CodeBadResponse,
		Message:        fmt.Sprintf("upstream %s answered %d to %s with %s; %s", upstream, status, tool, clean(problem, maxDetail), retryLater),
		Retryable:      true,
		UpstreamStatus: int32(status),
	}
}

// UnsupportedContent reports a successful answer whose content (binary,
// for example) cannot be passed to a model.
func UnsupportedContent(tool, upstream string, status int, contentType string, size int) *ToolError {
	return &ToolError{
		Class:          toolbusv1.ErrorClass_ERROR_CLASS_BAD_UPSTREAM_RESPONSE,
		Code:           CodeUnsupportedContent,
		Message:        fmt.Sprintf("upstream %s answered %s of %s to %s, and Toolbus passes only JSON and text to the model; %s", upstream, FormatBytes(int64(size)), clean(contentType, 80), tool, noRetry),
		UpstreamStatus: int32(status),
	}
}

// RedirectRefused reports a redirect Toolbus would not follow. reason names
// the target host at most, never a full URL (it may carry tokens).
func RedirectRefused(tool, upstream string, status int, reason string) *ToolError {
	return &ToolError{
		Class:          toolbusv1.ErrorClass_ERROR_CLASS_BAD_UPSTREAM_RESPONSE,
		Code:           CodeRedirectRefused,
		Message:        fmt.Sprintf("upstream %s redirected %s and Toolbus refused to follow (%s); %s", upstream, tool, clean(reason, maxDetail), noRetry),
		UpstreamStatus: int32(status),
	}
}

// Internal reports a fault inside Toolbus. what must not hold secrets.
func Internal(tool, what string) *ToolError {
	return &ToolError{
		Class:   toolbusv1.ErrorClass_ERROR_CLASS_INTERNAL,
		Code:    CodeInternal,
		Message: fmt.Sprintf("tool %s failed inside Toolbus (%s); retrying will not help until it is fixed", tool, clean(what, maxDetail)),
	}
}

// Error carries a *ToolError through Go error returns, so code that builds
// requests can fail with the exact tool error to report.
type Error struct {
	TE *ToolError
}

func (e *Error) Error() string { return e.TE.GetMessage() }

// Err wraps te as an error.
func Err(te *ToolError) error { return &Error{TE: te} }

// As returns the tool error carried by err, if any.
func As(err error) (*ToolError, bool) {
	var e *Error
	if errors.As(err, &e) && e.TE != nil {
		return e.TE, true
	}
	return nil, false
}

func duration(d time.Duration) *durationpb.Duration {
	if d <= 0 {
		return nil
	}
	return durationpb.New(d)
}

func statusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return fmt.Sprintf("%d %s", status, t)
	}
	return fmt.Sprint(status)
}

// quoted renders an upstream message after the status, or nothing.
func quoted(detail string) string {
	if detail == "" {
		return ""
	}
	return fmt.Sprintf(": %q", detail)
}

// FormatDuration renders d for a message: whole seconds above 10s, tenths
// of a second above 1s, milliseconds below.
func FormatDuration(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= 100*time.Millisecond:
		// A budget measured from a deadline is a few milliseconds short of
		// the configured timeout ("296ms"); say the round figure people set.
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(time.Millisecond).String()
	}
	return d.String()
}

// FormatBytes renders a size for a message, in binary units labelled the
// way people say them ("4 MB" for 4 MiB), rounded to one decimal.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	s := fmt.Sprintf("%.1f", v)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + [...]string{"KB", "MB", "GB", "TB"}[exp]
}
