package events

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"
)

// TestWebhookJSONMatchesEncodingJSON: what Publish sends for a Webhook is
// byte for byte what encoding/json produces, whichever path encodes it.
func TestWebhookJSONMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.UTC)
	tests := []Webhook{
		{},
		{Time: at, Source: "stripe", Type: "payment_intent.succeeded", EventID: "evt_1", Outcome: WebhookStored, Status: 202, Seq: 42, DurationMS: 0.412, Instance: "host-1"},
		{Time: at.In(time.FixedZone("x", -5*3600)), Source: "github", Outcome: WebhookRejected, Reason: "signature_mismatch", Status: 401, DurationMS: 12},
		{Time: at, Source: "s", Type: `a"b\c`, Outcome: "stored", Status: 202},
		{Time: at, Source: "s", Type: "<script>&", Outcome: "stored", Status: 202},
		{Time: at, Source: "s", EventID: "caf\u00e9 \u2028", Outcome: "stored", Status: 202},
		{Time: at, Source: "s", EventID: "bad \xff utf-8", Outcome: "stored", Status: 202},
		{Time: at, Source: "s", Type: "tab\there", Outcome: "stored"},
		{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Source: "s", Outcome: "stored"},
		{Time: at, Source: "s", Outcome: "stored", DurationMS: 1e-7},
		{Time: at, Source: "s", Outcome: "stored", DurationMS: 1e21},
		{Time: at, Source: "s", Outcome: "stored", DurationMS: -0.5},
		{Time: at, Source: "s", Outcome: "stored", DurationMS: 123456789.125},
		{Time: at, Source: "s", Outcome: "stored", Status: -1, Seq: math.MaxUint64},
	}
	for _, w := range tests {
		checkWebhookJSON(t, w)
	}
	var none *Webhook
	var got []byte
	if err := publishEncoded(none, func(b []byte) error { got = bytes.Clone(b); return nil }); err != nil || string(got) != "null" {
		t.Errorf("nil summary: %q, %v", got, err)
	}
	// Non-finite numbers fail the same way as before.
	w := Webhook{DurationMS: math.NaN()}
	if err := publishEncoded(&w, func([]byte) error { return nil }); err == nil {
		t.Error("NaN duration encoded without error")
	}
}

func FuzzWebhookJSON(f *testing.F) {
	f.Add(int64(1_700_000_000), int64(5), "stripe", "charge.succeeded", "evt_1", "stored", "", 202, uint64(7), 0.25, "i")
	f.Add(int64(-62_135_596_900), int64(0), "<", "\u2028", "\xff", `"`, "\\", -1, uint64(0), 1e-9, "")
	f.Fuzz(func(t *testing.T, sec, nsec int64, source, typ, id, outcome, reason string, status int, seq uint64, dur float64, instance string) {
		checkWebhookJSON(t, Webhook{Time: time.Unix(sec, nsec).UTC(), Source: source, Type: typ, EventID: id, Outcome: outcome,
			Reason: reason, Status: status, Seq: seq, DurationMS: dur, Instance: instance})
	})
}

func checkWebhookJSON(t *testing.T, w Webhook) {
	t.Helper()
	want, wantErr := json.Marshal(&w)
	var got []byte
	err := publishEncoded(&w, func(b []byte) error { got = bytes.Clone(b); return nil })
	if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
		t.Errorf("%+v:\n got %s (error %v)\nwant %s (error %v)", w, got, err, want, wantErr)
	}
}

func BenchmarkEncodeWebhook(b *testing.B) {
	w := &Webhook{Time: time.Now(), Source: "stripe", Type: "payment_intent.succeeded", EventID: "evt_1MqqbKLt4dXK03v5qaIbiNvC",
		Outcome: WebhookStored, Status: 202, Seq: 123456, DurationMS: 0.412, Instance: "host-1a2b3c4d"}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(w); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("publish-path", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := publishEncoded(w, func([]byte) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}
