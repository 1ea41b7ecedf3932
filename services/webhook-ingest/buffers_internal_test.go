package webhookingest

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

func TestGetBufCapacity(t *testing.T) {
	for _, n := range []int{0, 1, 1023, 1024, 1025, 64 << 10, 64<<10 + 1, 512 << 10, 512<<10 + 1, 3 << 20} {
		for range 2 { // a fresh buffer, then a pooled one
			p := getBuf(n)
			if len(*p) != 0 || cap(*p) < n {
				t.Fatalf("getBuf(%d): len %d cap %d", n, len(*p), cap(*p))
			}
			*p = append(*p, 'x')
			putBuf(p)
		}
	}
	putBuf(nil)
}

func TestReadBody(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 10_000) // 160,000 bytes
	tests := []struct {
		name    string
		body    io.Reader
		length  int64
		limit   int64
		want    []byte
		tooMuch bool
		failure bool
	}{
		{name: "known length", body: bytes.NewReader(body), length: int64(len(body)), limit: 1 << 20, want: body},
		{name: "known length, one byte at a time", body: iotest.OneByteReader(bytes.NewReader(body[:3000])), length: 3000, limit: 1 << 20, want: body[:3000]},
		{name: "known length at the limit", body: bytes.NewReader(body[:64]), length: 64, limit: 64, want: body[:64]},
		{name: "empty", body: bytes.NewReader(nil), length: 0, limit: 64, want: []byte{}},
		{name: "unknown length grows", body: iotest.HalfReader(bytes.NewReader(body)), length: -1, limit: 1 << 20, want: body},
		{name: "unknown length at the limit", body: bytes.NewReader(body[:100_000]), length: -1, limit: 100_000, want: body[:100_000]},
		{name: "unknown length over the limit", body: bytes.NewReader(body), length: -1, limit: 100_000, tooMuch: true},
		{name: "cut short", body: bytes.NewReader(body[:10]), length: 20, limit: 64, failure: true},
		{name: "read error", body: iotest.ErrReader(errors.New("boom")), length: -1, limit: 64, failure: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/webhooks/x", tt.body)
			r.ContentLength = tt.length
			p, err := readBody(httptest.NewRecorder(), r, tt.limit)
			var tooLarge *http.MaxBytesError
			switch {
			case tt.tooMuch:
				if !errors.As(err, &tooLarge) {
					t.Fatalf("error %v, want *http.MaxBytesError", err)
				}
			case tt.failure:
				if err == nil || errors.As(err, &tooLarge) {
					t.Fatalf("error %v, want a read error", err)
				}
			case err != nil:
				t.Fatal(err)
			case !bytes.Equal(*p, tt.want) || *p == nil:
				t.Fatalf("read %d bytes, want %d", len(*p), len(tt.want))
			default:
				putBuf(p)
			}
		})
	}
}

// TestKeptNameMatchesLowerCaseRule: the allocation-free matching of header
// names agrees with the plain rule on lower-cased names.
func TestKeptNameMatchesLowerCaseRule(t *testing.T) {
	extra := []string{"x-delivery-id", "x-event-type", "x-ts"}
	names := []string{
		"Content-Type", "content-type", "CONTENT-TYPE", "Content-Typ", "Content-Types", "User-Agent",
		"X-Github-Event", "X-GitHub-Delivery", "X-Hub-Signature-256", "X-Shopify-Hmac-Sha256",
		"X-Shopify-Topic", "X-Slack-Signature", "X-Slack-Request-Timestamp", "Webhook-Id",
		"Webhook-Signature", "Svix-Id", "Svix-Signature", "Stripe-Signature", "X-Delivery-Id",
		"X-Event-Type", "X-Ts", "X-Ts2", "Accept-Encoding", "Content-Length", "X-Hmac", "HMAC",
		"X-Signature", "x-sIgNaTuRe-extra", "\rebhook-id", "Webhook\r", "X-Github", "X-Github-",
		"X-Gİthub-Event", "X-Sİgnature", "Sıgnature", "", "-", "K", "X-Kelvin-\u212a",
	}
	for _, name := range names {
		checkKeptName(t, name, extra)
	}
}

func FuzzKeptName(f *testing.F) {
	for _, s := range []string{"Content-Type", "X-Github-Event", "Stripe-Signature", "X-Sİgnature", "svix-id"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		checkKeptName(t, name, []string{"x-delivery-id"})
	})
}

func checkKeptName(t *testing.T, name string, extra []string) {
	t.Helper()
	lower := strings.ToLower(name)
	want := keptLower(lower, extra)
	got, ok := keptName(name, extra)
	if ok != want || ok && got != lower {
		t.Errorf("keptName(%q) = %q, %v; want %q, %v", name, got, ok, lower, want)
	}
}
