// Package projectiontest helps tests subscribe an MCP client to projection
// resources and know when the server has recorded the subscription.
//
// Under protocol 2026-07-28 and later the go-sdk client's Subscribe opens a
// subscriptions/listen stream and returns without waiting for it: the
// server records the subscription, then sends
// notifications/subscriptions/acknowledged. A change made before that
// notification is not announced to the client, so a test that subscribes
// and changes an entity at once would race the server.
package projectiontest

import (
	"context"
	"fmt"
	"slices"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// firstListenProtocol is the first protocol version whose subscriptions go
// over subscriptions/listen.
const firstListenProtocol = "2026-07-28"

// Subscriptions records the subscriptions a client's server acknowledged.
type Subscriptions struct {
	acked chan []string
}

// Watch installs, on c and before it connects, a receiving middleware that
// records each notifications/subscriptions/acknowledged.
func Watch(c *mcp.Client) *Subscriptions {
	s := &Subscriptions{acked: make(chan []string, 16)}
	c.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if p, ok := req.GetParams().(*mcp.SubscriptionsAcknowledgedParams); ok && p != nil {
				select {
				case s.acked <- slices.Clone(p.Notifications.ResourceSubscriptions):
				default: // more unread acknowledgements than any test makes
				}
			}
			return next(ctx, method, req)
		}
	})
	return s
}

// Subscribe subscribes cs to uri and returns once the server has recorded
// the subscription: when resources/subscribe answers (protocols before
// 2026-07-28) or when the server acknowledges uri on the listen stream.
func (s *Subscriptions) Subscribe(ctx context.Context, cs *mcp.ClientSession, uri string) error {
	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: uri}); err != nil {
		return err
	}
	if v := cs.InitializeResult().ProtocolVersion; v < firstListenProtocol {
		return nil
	}
	for {
		select {
		case uris := <-s.acked:
			if slices.Contains(uris, uri) {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("subscribe %s: the server did not acknowledge the subscription: %w", uri, ctx.Err())
		}
	}
}
