package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// PublishDeadLetter stores dl durably on the dead-letter stream under
// name (the upstream or webhook source).
func PublishDeadLetter(ctx context.Context, js jetstream.JetStream, dl *toolbusv1.DeadLetter, name string) error {
	if dl.Id == "" {
		dl.Id = nuid.Next()
	}
	if dl.FailedAt == nil {
		dl.FailedAt = timestamppb.Now()
	}
	data, err := proto.Marshal(dl)
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	msg := &nats.Msg{Subject: DeadLetterSubject(dl.Kind, name), Data: data, Header: nats.Header{}}
	msg.Header.Set(HeaderMsgID, dl.Id)
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish dead letter: %w", err)
	}
	return nil
}
