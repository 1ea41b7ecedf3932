package mcpauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// wellKnownPath is RFC 9728's metadata path; the resource's own path is
// appended to it (path insertion).
const wellKnownPath = "/.well-known/oauth-protected-resource"

// maxPeekBytes bounds the body read to find the tool of a tools/call: an
// MCP request is small, and the SDK refuses larger ones anyway.
const maxPeekBytes = 4 << 20

// MetadataPaths are the paths the protected-resource metadata is served
// at: the path-suffixed one (e.g. /.well-known/oauth-protected-resource/mcp)
// and the bare one. Empty when auth is off.
func (a *Authenticator) MetadataPaths() []string {
	if !a.Enabled() {
		return nil
	}
	if a.resourcePath == "" {
		return []string{wellKnownPath}
	}
	return []string{wellKnownPath + a.resourcePath, wellKnownPath}
}

// Metadata is the RFC 9728 document.
func (a *Authenticator) Metadata() *oauthex.ProtectedResourceMetadata {
	m := &oauthex.ProtectedResourceMetadata{
		Resource:               a.cfg.Resource,
		ScopesSupported:        a.table().all,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           a.cfg.ResourceName,
		ResourceDocumentation:  a.cfg.ResourceDocumentation,
	}
	if o := a.cfg.OAuth; o != nil {
		m.AuthorizationServers = o.AuthorizationServers
	}
	return m
}

// MetadataHandler serves the metadata (with the SDK's handler, which
// allows any origin: the document is public).
func (a *Authenticator) MetadataHandler() http.Handler {
	return auth.ProtectedResourceMetadataHandler(a.Metadata())
}

// Mount registers the metadata handler at MetadataPaths on mux.
func (a *Authenticator) Mount(mux *http.ServeMux) {
	if !a.Enabled() {
		return
	}
	h := a.MetadataHandler()
	for _, p := range a.MetadataPaths() {
		mux.Handle(p, h)
	}
}

// Middleware protects the MCP endpoint: CORS first (a preflight carries no
// credentials), then the bearer check (401 with resource_metadata), then
// the per-tool scope check of tools/call (403 insufficient_scope). With
// auth off only CORS applies.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	h := next
	if a.Enabled() {
		h = auth.RequireBearerToken(a.verifier, &auth.RequireBearerTokenOptions{
			ResourceMetadataURL: a.resourceMetadataURL,
			// API keys have no expiry; JWT and introspection expiry is
			// checked in Verify, with the configured skew.
			AllowMissingExpiration: true,
			ClockSkew:              a.skew(),
		})(a.scopeGate(next))
	}
	return a.cors(h)
}

func (a *Authenticator) skew() time.Duration {
	if a.cfg.OAuth != nil {
		return a.cfg.OAuth.ClockSkew
	}
	return 0
}

// verifier adapts Verify to the SDK and logs refusals (never the token).
func (a *Authenticator) verifier(ctx context.Context, token string, r *http.Request) (*auth.TokenInfo, error) {
	id, err := a.Verify(ctx, token)
	if err != nil {
		if errors.Is(err, auth.ErrInvalidToken) {
			a.log.LogAttrs(ctx, slog.LevelInfo, "MCP request refused", slog.String("reason", err.Error()), slog.String("remote", r.RemoteAddr))
		} else {
			a.log.LogAttrs(ctx, slog.LevelError, "MCP credentials could not be checked", slog.String("error", err.Error()))
		}
		return nil, err
	}
	return id.tokenInfo(), nil
}

// scopeGate refuses a tools/call (alone or in a batch) for a tool the
// caller lacks scopes for, with 403 and the scopes to ask for.
func (a *Authenticator) scopeGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := FromTokenInfo(auth.TokenInfoFromContext(r.Context()))
		if r.Method != http.MethodPost || id == nil || id.Has(a.table().all) {
			// A caller holding every scope can call every tool: no need
			// to look at the body.
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxPeekBytes+1))
		r.Body.Close()
		if err != nil {
			http.Error(w, "cannot read request body", http.StatusBadRequest)
			return
		}
		if len(body) > maxPeekBytes {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		for _, tool := range calledTools(body) {
			need, known := a.table().byTool[tool]
			if !known {
				continue // the SDK answers unknown tools
			}
			if missing := id.Missing(need); len(missing) > 0 {
				a.log.LogAttrs(r.Context(), slog.LevelInfo, "tool call refused: insufficient scope",
					slog.String("tool", tool), slog.Any("caller", id), slog.String("missing", strings.Join(missing, " ")))
				a.insufficientScope(w, tool, need)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}

func (a *Authenticator) insufficientScope(w http.ResponseWriter, tool string, need []string) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="insufficient_scope", scope=%q, resource_metadata=%q, error_description=%q`,
		strings.Join(need, " "), a.resourceMetadataURL, "tool "+tool+" requires more scopes"))
	http.Error(w, "insufficient scope: tool "+tool+" requires scopes "+strings.Join(need, " "), http.StatusForbidden)
}

// rpcMessage is the part of a JSON-RPC message the gate reads.
type rpcMessage struct {
	Method string `json:"method"`
	Params struct {
		Name string `json:"name"`
	} `json:"params"`
}

// calledTools lists the tools a POST body calls. A body that does not
// parse calls nothing here; the SDK rejects it.
func calledTools(body []byte) []string {
	body = bytes.TrimLeft(body, " \t\r\n")
	var msgs []rpcMessage
	if len(body) > 0 && body[0] == '[' {
		if json.Unmarshal(body, &msgs) != nil {
			return nil
		}
	} else {
		var m rpcMessage
		if json.Unmarshal(body, &m) != nil {
			return nil
		}
		msgs = []rpcMessage{m}
	}
	var tools []string
	for _, m := range msgs {
		if m.Method == "tools/call" {
			tools = append(tools, m.Params.Name)
		}
	}
	return tools
}

// CORS headers. Mcp-Session-Id and Mcp-Protocol-Version must be readable
// by browser clients; WWW-Authenticate so they can discover the metadata.
const (
	corsAllowHeaders  = "Authorization, Content-Type, Accept, Last-Event-ID, Mcp-Session-Id, Mcp-Protocol-Version"
	corsExposeHeaders = "Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate"
	corsAllowMethods  = "GET, POST, DELETE, OPTIONS"
)

// cors answers preflights and adds CORS headers for the configured
// origins only. Credentials (cookies) are never allowed: callers send
// bearer tokens.
func (a *Authenticator) cors(next http.Handler) http.Handler {
	var origins []string
	var maxAge string
	if a.cfg != nil {
		origins = a.cfg.CORS.AllowedOrigins
		if a.cfg.CORS.MaxAge > 0 {
			maxAge = strconv.Itoa(int(a.cfg.CORS.MaxAge.Seconds()))
		}
	}
	if len(origins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		w.Header().Add("Vary", "Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		allowed := slices.Contains(origins, origin)
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if !allowed {
			if preflight {
				http.Error(w, "origin not allowed", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		if preflight {
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			if maxAge != "" {
				h.Set("Access-Control-Max-Age", maxAge)
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		next.ServeHTTP(w, r)
	})
}
