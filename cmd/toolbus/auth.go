package main

import (
	"fmt"
	"log/slog"
	"net"
	"slices"

	"google.golang.org/grpc"

	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/mcpauth"
)

// newAuthenticator prepares MCP authentication from the catalog's auth
// section, or returns nil when mcp-front is not served. A catalog without
// an auth section runs unauthenticated only when every listener is on a
// loopback address; anything reachable from the network must say what it
// wants, even if that is auth: none.
func newAuthenticator(cfg serveConfig, cat *catalog.Catalog, log *slog.Logger) (*mcpauth.Authenticator, error) {
	if !slices.Contains(cfg.services, svcMCPFront) {
		return nil, nil
	}
	if cat.Auth == nil {
		for _, addr := range []string{cfg.httpAddr, cfg.grpcAddr} {
			if addr != "none" && !loopbackAddr(addr) {
				return nil, fmt.Errorf("catalog %s has no auth section and Toolbus would listen on %s, beyond this machine: configure auth (see docs/security.md), or write auth: none to run without authentication", cat.File, addr)
			}
		}
	}
	return mcpauth.New(cat, mcpauth.Options{Logger: log.With("component", "mcpauth")})
}

// loopbackAddr reports whether a listen address is on a loopback host.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// grpcServerOptions installs the auth interceptor; ToolService is the only
// service it guards (health checks stay open).
func grpcServerOptions(authn *mcpauth.Authenticator) []grpc.ServerOption {
	if authn == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(authn.UnaryServerInterceptor())}
}
