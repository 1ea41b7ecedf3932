package deadletter

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestListGetRemove(t *testing.T) {
	ns := bustest.Server(t)
	_, js := bustest.Connect(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call, _ := proto.Marshal(&toolbusv1.ToolCall{Id: "c1", Tool: "create_customer", Upstream: "crm", IdempotencyKey: "k1"})
	for _, dl := range []*toolbusv1.DeadLetter{
		{Id: "dl-1", Kind: "call", Subject: bus.CallSubject("rest", "crm", "create_customer"), Payload: call, Reason: "retries exhausted: upstream_failed after 3 attempts"},
		{Id: "dl-2", Kind: "webhook", Subject: "toolbus.webhook.stripe.charge_succeeded", Payload: []byte("{}"), Reason: "undecodable"},
	} {
		if err := bus.PublishDeadLetter(ctx, js, dl, "crm"); err != nil {
			t.Fatal(err)
		}
	}
	all, err := List(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Id != "dl-1" || all[0].Call == nil || all[0].Call.IdempotencyKey != "k1" || all[1].Call != nil {
		t.Fatalf("List = %+v", all)
	}
	byID, err := Get(ctx, js, "dl-2")
	if err != nil || byID.Seq != all[1].Seq {
		t.Fatalf("Get by id: %+v %v", byID, err)
	}
	bySeq, err := Get(ctx, js, strconv.FormatUint(all[0].Seq, 10))
	if err != nil || bySeq.Id != "dl-1" {
		t.Fatalf("Get by sequence: %+v %v", bySeq, err)
	}
	if _, err := Get(ctx, js, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nope) = %v, want ErrNotFound", err)
	}
	if err := Remove(ctx, js, bySeq); err != nil {
		t.Fatal(err)
	}
	left, err := List(ctx, js)
	if err != nil || len(left) != 1 || left[0].Id != "dl-2" {
		t.Fatalf("after Remove: %+v %v", left, err)
	}
}
