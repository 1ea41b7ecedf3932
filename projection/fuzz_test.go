package projection

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

const fuzzProjectionCatalog = `version: 1
sources:
  stripe:
    scheme: stripe
    secrets: ["${env:S}"]
projections:
  payments:
    sources: [stripe]
    events: ["payment_intent.*"]
    key: data.object.id
    version: created
    delete_when: {events: [payment_intent.canceled]}
`

// FuzzDecodeWebhookEvent runs what the state-updater does with a message
// of the WEBHOOKS stream: decode a WebhookEvent and extract the entity.
// It never panics; an event it cannot use is poison (dead-lettered, never
// retried); a key it extracts survives the bucket key encoding.
func FuzzDecodeWebhookEvent(f *testing.F) {
	cat, err := catalog.Parse("f.yaml", []byte(fuzzProjectionCatalog), catalog.WithLookupEnv(func(string) (string, bool) { return "whsec_x", true }))
	if err != nil {
		f.Fatal(err)
	}
	p := cat.Projections["payments"]
	if p == nil {
		f.Fatal("no projection")
	}
	for _, body := range []string{
		`{"id":"evt_1","created":1700000000,"data":{"object":{"id":"pi_1","amount":5}}}`,
		`{"created":"x","data":{"object":{"id":12345678901234567890}}}`,
		`{"created":1,"data":{"object":{"id":"a/b.c*>\u0000"}}}`,
		`{"created":1,"data":{"object":{"id":""}}}`, `[]`, `{"a":1}{"b":2}`,
	} {
		b, err := proto.Marshal(&toolbusv1.WebhookEvent{Id: "evt", Source: "stripe", Type: "payment_intent.succeeded", Body: []byte(body)})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev toolbusv1.WebhookEvent
		if proto.Unmarshal(data, &ev) != nil {
			return
		}
		key, _, version, _, err := Extract(p, Event{ID: ev.Id, Source: ev.Source, Type: ev.Type, Body: ev.Body, ReceivedAt: ev.ReceivedAt.AsTime(), Sequence: 3})
		if err != nil {
			if !errors.Is(err, ErrPoison) {
				t.Fatalf("extract error %v is not poison", err)
			}
			return
		}
		if key == "" || version == "" {
			t.Fatalf("empty key %q or version %q without an error", key, version)
		}
		back, err := DecodeKey(EncodeKey(key))
		if err != nil || back != key {
			t.Fatalf("key %q encodes to %q, decodes to %q (%v)", key, EncodeKey(key), back, err)
		}
	})
}
