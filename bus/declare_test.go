package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/toolbus/toolbus/bus"
)

func TestDeclareRetriesOnlyUnansweredAttempts(t *testing.T) {
	defer bus.SetDeclareAttemptTimeout(20 * time.Millisecond)()
	errConflict := errors.New("stream name already in use with a different configuration")
	tests := []struct {
		name         string
		unanswered   int   // attempts that hang until their own timeout
		then         error // what the next attempt returns
		wantAttempts int
		wantErr      error
	}{
		{name: "answered at once", unanswered: 0, then: nil, wantAttempts: 1},
		{name: "two unanswered, then created", unanswered: 2, then: nil, wantAttempts: 3},
		{name: "a real refusal is not retried", unanswered: 0, then: errConflict, wantAttempts: 1, wantErr: errConflict},
		{name: "refusal after an unanswered attempt", unanswered: 1, then: errConflict, wantAttempts: 2, wantErr: errConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attempts := 0
			err := bus.Declare(context.Background(), func(ctx context.Context) error {
				attempts++
				if attempts <= tt.unanswered {
					<-ctx.Done()
					return ctx.Err()
				}
				return tt.then
			})
			if !errors.Is(err, tt.wantErr) || attempts != tt.wantAttempts {
				t.Errorf("Declare = %v after %d attempts, want %v after %d", err, attempts, tt.wantErr, tt.wantAttempts)
			}
		})
	}
}

func TestDeclareStopsWhenTheCallerGivesUp(t *testing.T) {
	defer bus.SetDeclareAttemptTimeout(20 * time.Millisecond)()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := bus.Declare(ctx, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() == nil {
		t.Errorf("Declare = %v with the caller's context %v, want the caller's deadline", err, ctx.Err())
	}
}
