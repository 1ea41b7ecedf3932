package main

import (
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/console"
	"github.com/toolbus/toolbus/mcpauth"
)

// consoleConfig is how serve and demo run the operator console
// (package console) at /console/.
type consoleConfig struct {
	// enabled is nil for "auto": on in the demo, and in serve when the
	// catalog configures an admin credential.
	enabled    *bool
	jaegerURL  string
	adminScope string
	// demo is set by `toolbus demo`: the console is on by default and,
	// with the demo's auth: none on loopback, open.
	demo bool
}

func (c *consoleConfig) register(fs *flag.FlagSet) {
	if v, ok := envLookupBool("TOOLBUS_CONSOLE"); ok {
		c.enabled = &v
	}
	fs.Var(consoleFlag{c}, "console", "serve the operator console at /console/ (default: on in demo; in serve, on when the catalog has an admin credential) [TOOLBUS_CONSOLE]")
	fs.StringVar(&c.jaegerURL, "jaeger-ui", envOr("TOOLBUS_JAEGER_UI", ""), "Jaeger base URL, e.g. http://127.0.0.1:16686: the console shows traces read from its HTTP API and links to its UI [TOOLBUS_JAEGER_UI]")
	fs.StringVar(&c.adminScope, "admin-scope", envOr("TOOLBUS_ADMIN_SCOPE", console.DefaultAdminScope), "scope a credential needs to use the console [TOOLBUS_ADMIN_SCOPE]")
}

// consoleFlag is a boolean flag whose absence means "auto".
type consoleFlag struct{ c *consoleConfig }

func (f consoleFlag) IsBoolFlag() bool { return true }
func (f consoleFlag) String() string {
	if f.c == nil || f.c.enabled == nil {
		return "auto"
	}
	return strconv.FormatBool(*f.c.enabled)
}
func (f consoleFlag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false")
	}
	f.c.enabled = &v
	return nil
}

func envLookupBool(name string) (bool, bool) {
	s := envOr(name, "")
	v, err := strconv.ParseBool(s)
	return v, err == nil
}

// adminConfigured reports whether some credential can carry the admin
// scope: an API key granted it (or "*"), or OAuth, whose tokens may.
func adminConfigured(cat *catalog.Catalog, scope string) bool {
	if !cat.Auth.Enabled() {
		return false
	}
	if cat.Auth.OAuth != nil {
		return true
	}
	for _, k := range cat.Auth.APIKeys {
		if slices.Contains(k.Scopes, scope) || slices.Contains(k.Scopes, "*") {
			return true
		}
	}
	return false
}

// newConsole builds the console when it is to run (nil otherwise). It is
// protected by the catalog's auth and the admin scope; it runs open only
// for the demo, or when asked for explicitly on a catalog with auth: none
// and loopback-only listeners.
func newConsole(cfg serveConfig, cat *catalog.Catalog, nc *nats.Conn, js jetstream.JetStream, authn *mcpauth.Authenticator, log *slog.Logger) (*console.Console, error) {
	cc := cfg.console
	explicit := cc.enabled != nil && *cc.enabled
	if cc.enabled != nil && !*cc.enabled || cc.enabled == nil && !cc.demo && !adminConfigured(cat, cc.adminScope) {
		return nil, nil
	}
	opts := console.Options{Catalog: cat, NC: nc, JS: js, Logger: log.With("service", "console"), JaegerURL: cc.jaegerURL, AdminScope: cc.adminScope}
	if authn == nil && cat.Auth.Enabled() && !explicit && !serverAuthResolved(cat) {
		// Auto mode in a process that does not serve mcp-front: it loaded
		// the catalog without the MCP-side credentials (least privilege,
		// catalogsecrets.go), so it cannot authenticate console users.
		log.Info("operator console off in this process: it holds no MCP-side auth secrets (run it with mcp-front, or pass --console)")
		return nil, nil
	}
	if authn == nil && cat.Auth.Enabled() {
		var err error
		if authn, err = mcpauth.New(cat, mcpauth.Options{Logger: log.With("component", "mcpauth")}); err != nil {
			return nil, err
		}
	}
	switch {
	case authn.Enabled():
		opts.Auth = authn
		if !adminConfigured(cat, cc.adminScope) {
			log.Warn("operator console: no API key in the catalog carries the admin scope; only OAuth tokens with it can sign in", "scope", cc.adminScope)
		}
	case (cc.demo || explicit) && loopbackOnly(cfg):
		opts.Open = true
		log.Warn("operator console is OPEN (catalog auth: none): anyone who can reach " + cfg.httpAddr + "/console/ can replay and discard dead letters; use it only on a trusted machine")
	default:
		return nil, usageError{"--console needs authentication: configure auth with an API key granted scope " + cc.adminScope + " (see docs/console.md), or listen on loopback only"}
	}
	return console.New(opts)
}

func loopbackOnly(cfg serveConfig) bool {
	for _, addr := range []string{cfg.httpAddr, cfg.grpcAddr} {
		if addr != "none" && !loopbackAddr(addr) {
			return false
		}
	}
	return true
}
