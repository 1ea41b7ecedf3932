package bus

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// CallsOutstanding counts the calls not yet answered and acknowledged,
// waiting in a call consumer or in flight at a worker, over every upstream.
// Zero means every published call was taken to an answer. (The CALLS stream
// itself keeps acknowledged calls until its age or size limit: see
// Topology.CallsStream.)
func CallsOutstanding(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	s, err := js.Stream(ctx, StreamCalls)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", StreamCalls, err)
	}
	var n uint64
	infos := s.ListConsumers(ctx)
	for info := range infos.Info() {
		if strings.HasPrefix(info.Name, "calls-") {
			n += info.NumPending + uint64(info.NumAckPending)
		}
	}
	if err := infos.Err(); err != nil {
		return 0, fmt.Errorf("consumers of %s: %w", StreamCalls, err)
	}
	return n, nil
}
