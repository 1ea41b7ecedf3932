package webhookingest

import (
	"errors"
	"time"

	"github.com/toolbus/toolbus/events"
	"github.com/toolbus/toolbus/signature"
)

// delivery is the summary of one delivery for the operational event feed
// (package events), filled in by receive as the delivery goes.
type delivery struct {
	start time.Time
	ev    events.Webhook
}

func (d *delivery) set(outcome string, status int, reason string) {
	d.ev.Outcome, d.ev.Status, d.ev.Reason = outcome, status, reason
}

// publishEvent sends the delivery's summary without waiting (best effort:
// it can neither delay nor fail the answer to the provider).
func (s *Service) publishEvent(d *delivery) {
	if d.ev.Outcome == "" {
		return
	}
	d.ev.Time = d.start
	d.ev.DurationMS = float64(time.Since(d.start).Microseconds()) / 1000
	d.ev.Instance = s.opts.Instance
	_ = events.Publish(s.opts.NC, events.SubjectWebhook, &d.ev)
}

// rejectReason names a verification failure for operators (the provider
// only ever sees a bare 401).
func rejectReason(err error) string {
	for _, r := range []struct {
		err  error
		name string
	}{
		{signature.ErrMissingSignature, "missing_signature"},
		{signature.ErrMissingHeader, "missing_header"},
		{signature.ErrMalformedHeader, "malformed_header"},
		{signature.ErrSignatureMismatch, "signature_mismatch"},
		{signature.ErrTimestampOutOfTolerance, "timestamp_out_of_tolerance"},
		{signature.ErrMalformedPayload, "malformed_payload"},
		{signature.ErrInvalidConfig, "invalid_config"},
	} {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return "invalid"
}
