// Package deadletter provides the operator's view of the DEADLETTERS
// stream: list and show what failed permanently (with reason, subject,
// deliveries and last error), and replay it against a running system. A
// replayed call is published again with a fresh deadline and its original
// idempotency key, so an upstream that did perform it the first time does
// not perform it twice.
//
// It must not decide what is dead-lettered (the bus does) and must not
// call upstreams itself: a replay goes through the bus to the workers.
package deadletter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/toolbus/toolbus/bus"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// MaxList bounds how many dead letters List reads.
const MaxList = 10000

// ErrNotFound means no dead letter has the given id or sequence.
var ErrNotFound = errors.New("dead letter not found")

// Entry is one stored dead letter.
type Entry struct {
	// Seq is the stream sequence; ID the dead letter's own id. Either
	// names the entry on the command line.
	Seq uint64
	*toolbusv1.DeadLetter
	// Call is the decoded tool call of a "call" dead letter (nil for
	// other kinds, or when the payload itself was undecodable).
	Call *toolbusv1.ToolCall
}

func decode(seq uint64, data []byte) (Entry, error) {
	dl := &toolbusv1.DeadLetter{}
	if err := proto.Unmarshal(data, dl); err != nil {
		return Entry{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	e := Entry{Seq: seq, DeadLetter: dl}
	if dl.Kind == "call" {
		c := &toolbusv1.ToolCall{}
		if proto.Unmarshal(dl.Payload, c) == nil && c.Tool != "" {
			e.Call = c
		}
	}
	return e, nil
}

// List returns the stored dead letters, oldest first.
func List(ctx context.Context, js jetstream.JetStream) ([]Entry, error) {
	st, err := js.Stream(ctx, bus.StreamDeadLetters)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", bus.StreamDeadLetters, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", bus.StreamDeadLetters, err)
	}
	var out []Entry
	if info.State.Msgs == 0 {
		return out, nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && len(out) < MaxList; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // removed after a replay
		}
		if err != nil {
			return nil, fmt.Errorf("dead letter %d: %w", seq, err)
		}
		e, err := decode(seq, m.Data)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Get finds a dead letter by its id or its stream sequence.
func Get(ctx context.Context, js jetstream.JetStream, id string) (Entry, error) {
	if seq, err := strconv.ParseUint(id, 10, 64); err == nil {
		st, err := js.Stream(ctx, bus.StreamDeadLetters)
		if err != nil {
			return Entry{}, fmt.Errorf("stream %s: %w", bus.StreamDeadLetters, err)
		}
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return Entry{}, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		if err != nil {
			return Entry{}, err
		}
		return decode(seq, m.Data)
	}
	all, err := List(ctx, js)
	if err != nil {
		return Entry{}, err
	}
	for _, e := range all {
		if e.Id == id {
			return e, nil
		}
	}
	return Entry{}, fmt.Errorf("%w: %s", ErrNotFound, id)
}

// Remove deletes a dead letter from the stream.
func Remove(ctx context.Context, js jetstream.JetStream, e Entry) error {
	st, err := js.Stream(ctx, bus.StreamDeadLetters)
	if err != nil {
		return err
	}
	if err := st.DeleteMsg(ctx, e.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("remove dead letter %d: %w", e.Seq, err)
	}
	return nil
}

// ReplayOptions configure Replay.
type ReplayOptions struct {
	// Timeout is the replayed call's deadline from now; zero means the
	// call's original budget (deadline minus acceptance), or 30s.
	Timeout time.Duration
	// Keep leaves the dead letter in the stream after a replay that got
	// an answer; by default it is removed (a call that failed permanently
	// again is dead-lettered anew), so the list shows what needs care.
	Keep bool
}

// DefaultReplayTimeout applies when a call carries no usable budget.
const DefaultReplayTimeout = 30 * time.Second

// Replay publishes a dead-lettered call again with a fresh deadline and
// the same idempotency key, waits for its result and returns it. A result
// with Error set is a failed replay; a returned error means no result
// (the dead letter stays). Events and other kinds are republished on their
// subject without waiting (nil result).
func Replay(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, e Entry, opts ReplayOptions) (*toolbusv1.ToolResult, error) {
	if e.Kind != "call" {
		msg := &nats.Msg{Subject: e.Subject, Data: e.Payload, Header: nats.Header{}}
		msg.Header.Set(bus.HeaderMsgID, e.Id+".replay."+nuid.Next())
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			return nil, fmt.Errorf("republish %s: %w", e.Subject, err)
		}
		if opts.Keep {
			return nil, nil
		}
		return nil, Remove(ctx, js, e)
	}
	if e.Call == nil {
		return nil, fmt.Errorf("dead letter %s holds an undecodable call (%s): nothing to replay", e.Id, e.Reason)
	}
	budget := opts.Timeout
	if budget <= 0 && e.Call.Deadline != nil && e.Call.AcceptedAt != nil {
		budget = e.Call.Deadline.AsTime().Sub(e.Call.AcceptedAt.AsTime())
	}
	if budget <= 0 {
		budget = DefaultReplayTimeout
	}
	call := proto.Clone(e.Call).(*toolbusv1.ToolCall)
	// A fresh id (the stream would drop the old one as a duplicate), the
	// same idempotency key (the upstream must not perform it twice).
	call.Id = ""
	if call.IdempotencyKey == "" {
		call.IdempotencyKey = e.Call.Id
	}
	now := time.Now()
	call.AcceptedAt = timestamppb.New(now)
	call.Deadline = timestamppb.New(now.Add(budget))

	caller, err := bus.NewCaller(nc, js, bus.CallerOptions{Instance: "dlq-replay-" + nuid.Next()})
	if err != nil {
		return nil, err
	}
	defer caller.Close()
	cctx, cancel := context.WithDeadline(ctx, now.Add(budget+2*time.Second))
	defer cancel()
	res, err := caller.Call(cctx, e.Subject, call)
	if err != nil {
		return nil, fmt.Errorf("replay of %s: %w", e.Id, err)
	}
	// Answered either way: a call that failed permanently again was
	// dead-lettered anew by the worker, so the old entry would only be a
	// duplicate.
	if !opts.Keep {
		if err := Remove(ctx, js, e); err != nil {
			return res, err
		}
	}
	return res, nil
}
