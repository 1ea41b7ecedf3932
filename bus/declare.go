package bus

import (
	"context"
	"errors"
	"time"
)

// declareAttemptTimeout bounds one create-or-update request. When several
// replicas declare the same replicated (R3) stream, bucket or consumer at
// the same moment, the JetStream cluster answers one of them and leaves the
// others' requests unanswered; a repeat finds the asset in place and
// returns in milliseconds. Without a short bound, each loser waited for its
// caller's whole timeout per asset (seen at 10 s each at cluster start-up).
var declareAttemptTimeout = 2 * time.Second

// Declare runs the create-or-update request f until it succeeds, fails for
// another reason than its own attempt timing out, or ctx ends.
func Declare(ctx context.Context, f func(context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, declareAttemptTimeout)
		err := f(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
}
