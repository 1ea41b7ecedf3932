// Package projectiontest helps tests read projections over MCP: a server
// that hosts them, and a client session that records change notifications
// and knows when the server has recorded a subscription.
//
// Under protocol 2026-07-28 and later the go-sdk client's Subscribe opens a
// subscriptions/listen stream and returns without waiting for it: the
// server records the subscription, then sends
// notifications/subscriptions/acknowledged. A change made before that
// notification is not announced to the client, so a test that subscribes
// and changes an entity at once would race the server. Client.Subscribe
// waits for the acknowledgement.
package projectiontest

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/projection"
)

// firstListenProtocol is the first protocol version whose subscriptions go
// over subscriptions/listen.
const firstListenProtocol = "2026-07-28"

// Server is an MCP server hosting the projections of cat read through r,
// set up as a host must (projection.Register and the subscription
// handlers). Run projection.Notify for it to send change notifications.
func Server(r *projection.Reader, cat *catalog.Catalog) *mcp.Server {
	srv := mcp.NewServer(&mcp.Implementation{Name: "projectiontest"}, &mcp.ServerOptions{
		Logger:             slog.New(slog.DiscardHandler),
		SubscribeHandler:   r.SubscribeHandler(),
		UnsubscribeHandler: projection.UnsubscribeHandler,
	})
	projection.Register(srv, r, cat)
	return srv
}

// Client is a go-sdk client session that records change notifications.
type Client struct {
	*mcp.ClientSession
	// Updated receives the URI of each notifications/resources/updated.
	Updated chan string
	acked   chan []string
}

// Connect connects a go-sdk client over tr; opts may set handlers other
// than ResourceUpdatedHandler, which is the Client's. The session closes
// when the test ends.
func Connect(tb testing.TB, ctx context.Context, tr mcp.Transport, opts *mcp.ClientOptions) *Client {
	tb.Helper()
	c := &Client{Updated: make(chan string, 16), acked: make(chan []string, 16)}
	o := mcp.ClientOptions{}
	if opts != nil {
		o = *opts
	}
	o.ResourceUpdatedHandler = func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
		c.Updated <- req.Params.URI
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "projectiontest", Version: "test"}, &o)
	client.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if p, ok := req.GetParams().(*mcp.SubscriptionsAcknowledgedParams); ok && p != nil {
				select {
				case c.acked <- slices.Clone(p.Notifications.ResourceSubscriptions):
				default: // more unread acknowledgements than any test makes
				}
			}
			return next(ctx, method, req)
		}
	})
	cs, err := client.Connect(ctx, tr, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cs.Close() })
	c.ClientSession = cs
	return c
}

// ConnectInMemory serves srv over in-memory transports and connects a
// Client to it; both ends close when the test ends.
func ConnectInMemory(tb testing.TB, ctx context.Context, srv *mcp.Server) *Client {
	tb.Helper()
	st, ct := mcp.NewInMemoryTransports()
	ss, err := srv.Connect(ctx, st, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ss.Close() })
	return Connect(tb, ctx, ct, nil)
}

// Subscribe subscribes to uri and returns once the server has recorded
// the subscription: when resources/subscribe answers (protocols before
// 2026-07-28) or when the server acknowledges uri on the listen stream.
func (c *Client) Subscribe(ctx context.Context, uri string) error {
	if err := c.ClientSession.Subscribe(ctx, &mcp.SubscribeParams{URI: uri}); err != nil {
		return err
	}
	if c.InitializeResult().ProtocolVersion < firstListenProtocol {
		return nil
	}
	for {
		select {
		case uris := <-c.acked:
			if slices.Contains(uris, uri) {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("subscribe %s: the server did not acknowledge the subscription: %w", uri, ctx.Err())
		}
	}
}
