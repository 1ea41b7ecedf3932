package webhookingest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/toolbus/toolbus/events"
)

// TestEveryDeliveryIsSummarisedOnTheEventFeed: the operator console counts
// outcomes, dedup hits and rejections by reason from these summaries.
func TestEveryDeliveryIsSummarisedOnTheEventFeed(t *testing.T) {
	r := newRig(t, rigOptions{})
	sub, err := r.nc.SubscribeSync(events.SubjectWebhook)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	tampered := r.signed(t, "stripe", stripeBody("evt_2"), "", "")
	tampered.Body = io.NopCloser(bytes.NewReader(stripeBody("evt_3")))
	tampered.GetBody = nil // a retry must not send the signed original
	unsigned, _ := http.NewRequest(http.MethodPost, r.url+"/webhooks/stripe", bytes.NewReader(stripeBody("evt_11")))
	tests := []struct {
		give *http.Request
		want events.Webhook
	}{
		{give: r.signed(t, "stripe", stripeBody("evt_1"), "", ""),
			want: events.Webhook{Source: "stripe", Type: "payment_intent.succeeded", EventID: "evt_1", Outcome: events.WebhookStored, Status: 202, Seq: 1}},
		{give: r.signed(t, "stripe", stripeBody("evt_1"), "", ""),
			want: events.Webhook{Source: "stripe", Type: "payment_intent.succeeded", EventID: "evt_1", Outcome: events.WebhookDuplicate, Status: 200, Seq: 1}},
		{give: tampered,
			want: events.Webhook{Source: "stripe", Outcome: events.WebhookRejected, Reason: "signature_mismatch", Status: 401}},
		{give: unsigned,
			want: events.Webhook{Source: "stripe", Outcome: events.WebhookRejected, Reason: "missing_signature", Status: 401}},
	}
	for _, tt := range tests {
		if a := do(t, tt.give); a.Status != tt.want.Status {
			t.Fatalf("delivery answered %d, want %d", a.Status, tt.want.Status)
		}
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("no event for %s: %v", tt.want.Outcome, err)
		}
		var got events.Webhook
		if err := json.Unmarshal(msg.Data, &got); err != nil {
			t.Fatal(err)
		}
		if got.Time.IsZero() || got.DurationMS <= 0 {
			t.Errorf("event without time or duration: %+v", got)
		}
		if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(events.Webhook{}, "Time", "DurationMS", "Instance")); diff != "" {
			t.Errorf("event (-want +got):\n%s", diff)
		}
	}
}
