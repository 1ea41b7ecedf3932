package toolerr

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestFromHTTP(t *testing.T) {
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	jsonType := hdr("Content-Type", "application/json")
	tests := []struct {
		name       string
		giveStatus int
		giveHeader http.Header
		giveBody   string
		want       *ToolError
	}{
		{
			name:       "404 quotes nested error message",
			giveStatus: 404, giveHeader: jsonType,
			giveBody: `{"error":{"code":"not_found","message":"customer 42 not found"}}`,
			want: &ToolError{
				Class: toolbusv1.ErrorClass_ERROR_CLASS_NOT_FOUND, Code: CodeNotFound, UpstreamStatus: 404,
				Message: "customer 42 not found (upstream crm answered 404 to get_customer); retrying will not help",
			},
		},
		{
			name:       "404 without body",
			giveStatus: 404, giveHeader: hdr(),
			want: &ToolError{
				Class: toolbusv1.ErrorClass_ERROR_CLASS_NOT_FOUND, Code: CodeNotFound, UpstreamStatus: 404,
				Message: "upstream crm answered 404 to get_customer; the requested resource does not exist, retrying will not help",
			},
		},
		{
			name:       "429 with seconds",
			giveStatus: 429, giveHeader: hdr("Retry-After", "30"),
			giveBody: `{"error":"slow down"}`,
			want: &ToolError{
				Class: toolbusv1.ErrorClass_ERROR_CLASS_RATE_LIMITED, Code: CodeRateLimited, UpstreamStatus: 429,
				Retryable: true, RetryAfter: durationpb.New(30 * time.Second),
				Message: "upstream crm is rate limiting (429, get_customer); retry after 30s",
			},
		},
		{
			name:       "429 with HTTP date",
			giveStatus: 429, giveHeader: hdr("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat)),
			want: &ToolError{
				Class: toolbusv1.ErrorClass_ERROR_CLASS_RATE_LIMITED, Code: CodeRateLimited, UpstreamStatus: 429,
				Retryable: true, RetryAfter: durationpb.New(90 * time.Second),
				Message: "upstream crm is rate limiting (429, get_customer); retry after 1m30s",
			},
		},
		{
			name:       "429 without Retry-After",
			giveStatus: 429, giveHeader: hdr(),
			want: &ToolError{
				Class: toolbusv1.ErrorClass_ERROR_CLASS_RATE_LIMITED, Code: CodeRateLimited, UpstreamStatus: 429,
				Retryable: true,
				Message:   "upstream crm is rate limiting (429, get_customer); retrying later may help",
			},
		},
		{
			name:       "503 plain",
			giveStatus: 503, giveHeader: hdr("Content-Type", "text/html"),
			giveBody: "<html><body>Service Unavailable</body></html>",
			want: &ToolError{
				Class: toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_FAILED, Code: CodeUpstreamFailed, UpstreamStatus: 503,
				Retryable: true,
				Message:   "upstream crm failed with 503 Service Unavailable (get_customer); retrying later may help",
			},
		},
		{
			name:       "500 quotes top-level message",
			giveStatus: 500, giveHeader: jsonType,
			giveBody: `{"message":"database\nunavailable"}`,
			want: &ToolError{
				Class: toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_FAILED, Code: CodeUpstreamFailed, UpstreamStatus: 500,
				Retryable: true,
				Message:   `upstream crm failed with 500 Internal Server Error (get_customer): "database unavailable"; retrying later may help`,
			},
		},
		{
			name:       "422 with errors list",
			giveStatus: 422, giveHeader: jsonType,
			giveBody: `{"errors":[{"message":"email is invalid"},{"message":"name is required"}]}`,
			want: &ToolError{
				Class: toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_REJECTED, Code: CodeRejected, UpstreamStatus: 422,
				Message: `upstream crm rejected get_customer with 422 Unprocessable Entity: "email is invalid; name is required"; retrying with the same arguments will not help`,
			},
		},
		{
			name:       "400 problem details",
			giveStatus: 400, giveHeader: hdr("Content-Type", "application/problem+json"),
			giveBody: `{"type":"about:blank","title":"Bad Request","detail":"limit must be at most 100"}`,
			want: &ToolError{
				Class: toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_REJECTED, Code: CodeRejected, UpstreamStatus: 400,
				Message: `upstream crm rejected get_customer with 400 Bad Request: "Bad Request: limit must be at most 100"; retrying with the same arguments will not help`,
			},
		},
		{
			name:       "401",
			giveStatus: 401, giveHeader: jsonType, giveBody: `{"detail":"invalid api key"}`,
			want: &ToolError{
				Class: toolbusv1.ErrorClass_ERROR_CLASS_UNAUTHENTICATED, Code: CodeUnauthenticated, UpstreamStatus: 401,
				Message: `upstream crm refused Toolbus's credentials (401) for get_customer: "invalid api key"; retrying will not help until the upstream credentials in the catalog are fixed`,
			},
		},
		{
			name:       "403",
			giveStatus: 403, giveHeader: hdr("Content-Type", "text/plain; charset=utf-8"), giveBody: "forbidden\nsecond line",
			want: &ToolError{
				Class: toolbusv1.ErrorClass_ERROR_CLASS_PERMISSION_DENIED, Code: CodePermissionDenied, UpstreamStatus: 403,
				Message: `upstream crm denied permission (403) for get_customer: "forbidden"; retrying will not help`,
			},
		},
		{
			name:       "409",
			giveStatus: 409, giveHeader: jsonType, giveBody: `{"error":"version mismatch"}`,
			want: &ToolError{
				Class: toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_REJECTED, Code: CodeConflict, UpstreamStatus: 409,
				Message: `upstream crm reported a conflict (409) for get_customer: "version mismatch"; read the current state before trying again, retrying the same call will not help`,
			},
		},
		{
			name:       "408",
			giveStatus: 408, giveHeader: hdr(),
			want: &ToolError{
				Class: toolbusv1.ErrorClass_ERROR_CLASS_TIMEOUT, Code: CodeUpstreamTimeout, UpstreamStatus: 408, Retryable: true,
				Message: "upstream crm timed out (408) on get_customer; retrying later may help",
			},
		},
		{
			name:       "304",
			giveStatus: 304, giveHeader: hdr(),
			want: &ToolError{
				Class: toolbusv1.ErrorClass_ERROR_CLASS_BAD_UPSTREAM_RESPONSE, Code: CodeBadResponse, UpstreamStatus: 304,
				Message: "upstream crm answered 304 Not Modified to get_customer, which is not a usable answer; retrying will not help",
			},
		},
		{
			name:       "2xx is no error",
			giveStatus: 204, giveHeader: hdr(),
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fromHTTP("get_customer", "crm", tt.giveStatus, tt.giveHeader, []byte(tt.giveBody), now)
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("FromHTTP mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUpstreamMessage(t *testing.T) {
	tests := []struct {
		name     string
		giveType string
		giveBody string
		want     string
	}{
		{"nested error", "application/json", `{"error":{"message":"no such customer"}}`, "no such customer"},
		{"error string", "application/json", `{"error":"bad key"}`, "bad key"},
		{"message", "application/json", `{"message":"oops","code":7}`, "oops"},
		{"errors list", "application/json", `{"errors":[{"message":"a"},{"code":1},{"message":"b"}]}`, "a; b"},
		{"detail only", "application/json", `{"detail":"Not found."}`, "Not found."},
		{"title only", "application/problem+json", `{"title":"Gone"}`, "Gone"},
		{"title repeated in detail", "application/problem+json", `{"title":"Bad","detail":"Bad input"}`, "Bad input"},
		{"error of another type falls through", "application/json", `{"error":42,"message":"m"}`, "m"},
		{"no known field", "application/json", `{"foo":"bar"}`, ""},
		{"not an object", "application/json", `["x"]`, ""},
		{"broken json", "application/json", `{"error":`, ""},
		{"control characters", "application/json", `{"error":"a\u0000b\r\nc\u001b[31m"}`, "a b c [31m"},
		{"bidi override dropped", "application/json", `{"error":"abc\u202edef"}`, "abc def"},
		{"html ignored", "text/html", "<h1>Not Found</h1>", ""},
		{"plain text first line", "text/plain", "rate limited\nsee docs", "rate limited"},
		{"long message capped", "application/json", `{"error":"` + strings.Repeat("x", 400) + `"}`, strings.Repeat("x", 300) + "…"},
		{"empty", "application/json", "  ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := UpstreamMessage(tt.giveType, []byte(tt.giveBody)); got != tt.want {
				t.Errorf("UpstreamMessage(%q) = %q, want %q", tt.giveBody, got, tt.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		give   string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"30", 30 * time.Second, true},
		{" 5 ", 5 * time.Second, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"abc", 0, false},
		{"99999999999999999999", MaxRetryAfter, true},
		{"864000", MaxRetryAfter, true},
		{now.Add(2 * time.Minute).Format(http.TimeFormat), 2 * time.Minute, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{now.Add(72 * time.Hour).Format(http.TimeFormat), MaxRetryAfter, true},
		{"Sun, 06 Nov 1994 08:49:37", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, ok := ParseRetryAfter(tt.give, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.give, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestConstructors(t *testing.T) {
	tests := []struct {
		name string
		give *ToolError
		want *ToolError
	}{
		{
			name: "timeout",
			give: Timeout("get_customer", "crm", 9980*time.Millisecond),
			want: &ToolError{Class: toolbusv1.ErrorClass_ERROR_CLASS_TIMEOUT, Code: CodeTimeout, Retryable: true,
				Message: "upstream crm did not answer within 10s (get_customer); retrying later may help"},
		},
		{
			name: "too large with size",
			give: ResponseTooLarge("get_customer", "crm", 12<<20, 4<<20),
			want: &ToolError{Class: toolbusv1.ErrorClass_ERROR_CLASS_RESPONSE_TOO_LARGE, Code: CodeResponseTooLarge,
				Message: "upstream crm answered 12 MB, more than the 4 MB limit for get_customer; narrow the request (filters, page size)"},
		},
		{
			name: "too large size unknown",
			give: ResponseTooLarge("get_customer", "crm", -1, 512<<10),
			want: &ToolError{Class: toolbusv1.ErrorClass_ERROR_CLASS_RESPONSE_TOO_LARGE, Code: CodeResponseTooLarge,
				Message: "upstream crm answered more than the 512 KB limit for get_customer; narrow the request (filters, page size)"},
		},
		{
			name: "unreachable",
			give: Unreachable("get_customer", "crm", "connection refused"),
			want: &ToolError{Class: toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_UNREACHABLE, Code: CodeUnreachable, Retryable: true,
				Message: "upstream crm could not be reached (connection refused); the request for get_customer never reached the upstream, retrying later may help"},
		},
		{
			name: "invalid argument",
			give: InvalidArgument("get_customer", "id", `must not be ".."`),
			want: &ToolError{Class: toolbusv1.ErrorClass_ERROR_CLASS_INVALID_ARGUMENT, Code: CodeInvalidArgument,
				Message: `invalid argument id for get_customer: must not be ".."; fix the argument and call again`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.give, protocmp.Transform()); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEveryMessageIsOneLine(t *testing.T) {
	all := []*ToolError{
		InvalidArgument("t", "f", "a\nb"), UnknownTool("t", "u"), NotFound("t", "u", 404, ""),
		RateLimited("t", "u", 0, 0), UpstreamFailed("t", "u", 502, "x\ny", time.Second), Timeout("t", "u", time.Second),
		Cancelled("t", "u"), Unreachable("t", "u", "r"), ConnectionLost("t", "u", "reset"), ResponseTooLarge("t", "u", 10, 5),
		BadResponse("t", "u", 200, "p"), UnsupportedContent("t", "u", 200, "image/png", 3000), RedirectRefused("t", "u", 302, "r"),
		Internal("t", "w"),
	}
	for _, te := range all {
		if strings.ContainsAny(te.Message, "\r\n") || te.Code == "" || te.Class == 0 {
			t.Errorf("bad tool error %v", te)
		}
		if !strings.Contains(te.Message, "retry") && !strings.Contains(te.Message, "narrow") && !strings.Contains(te.Message, "call again") {
			t.Errorf("message %q does not say whether retrying helps", te.Message)
		}
	}
}

func TestErrWrapsToolError(t *testing.T) {
	te := InvalidArgument("t", "id", "empty")
	err := fmt.Errorf("build: %w", Err(te))
	got, ok := As(err)
	if !ok || got != te {
		t.Fatalf("As(%v) = %v, %v", err, got, ok)
	}
	if _, ok := As(errors.New("plain")); ok {
		t.Error("As found a tool error in a plain error")
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		give int64
		want string
	}{
		{0, "0 bytes"}, {1023, "1023 bytes"}, {1024, "1 KB"}, {1536, "1.5 KB"}, {4 << 20, "4 MB"}, {3 << 30, "3 GB"},
	}
	for _, tt := range tests {
		if got := FormatBytes(tt.give); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.give, got, tt.want)
		}
	}
}
