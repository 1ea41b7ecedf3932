package upstream

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/toolerr"
)

type callerKey struct{}

// WithCaller returns ctx carrying the call's caller (ToolCall.Caller).
// Every worker sets it before [Client.Do]: the forward and token_exchange
// schemes send or exchange the caller's own token, which is never logged
// and never appears in errors.
func WithCaller(ctx context.Context, c *toolbusv1.Caller) context.Context {
	if c == nil {
		return ctx
	}
	return context.WithValue(ctx, callerKey{}, c)
}

func callerToken(ctx context.Context) string {
	c, _ := ctx.Value(callerKey{}).(*toolbusv1.Caller)
	return c.GetToken()
}

// AuthOptions tune the auth layer. The zero value is ready for production.
type AuthOptions struct {
	// TokenClient reaches token endpoints; default: a dedicated client
	// with short timeouts that refuses link-local addresses.
	TokenClient *http.Client
	// RefreshBefore is how long before expiry a cached token is replaced
	// (at most a fifth of its lifetime); default 1 minute.
	RefreshBefore time.Duration
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// Defaults of the auth layer.
const (
	DefaultRefreshBefore = time.Minute
	// tokenTimeout bounds one token request, independently of the call
	// that triggered it: concurrent calls share the answer.
	tokenTimeout = 15 * time.Second
	// maxExchangeCache bounds the per-caller token_exchange cache.
	maxExchangeCache = 10000
	maxTokenResponse = 1 << 20
)

// NewAuth returns the auth layer for upstream u, or nil when u needs no
// authentication. It makes no network calls: tokens are fetched on first
// use. [New] installs it unless Options.Layers.Auth is set.
func NewAuth(u *catalog.Upstream, opts AuthOptions) (Middleware, error) {
	// Every credential of u, not only the auth's: callers (the rest-worker's
	// SOAP path) build the auth layer first.
	if err := u.SecretsErr(); err != nil {
		return nil, err
	}
	a := u.Auth
	if a == nil || a.Type == catalog.AuthNone {
		return nil, nil
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RefreshBefore <= 0 {
		opts.RefreshBefore = DefaultRefreshBefore
	}
	if opts.TokenClient == nil {
		opts.TokenClient = newTokenClient()
	}
	switch a.Type {
	case catalog.AuthAPIKey:
		if a.In == "query" {
			return func(next http.RoundTripper) http.RoundTripper {
				return &queryKey{next: next, name: a.Name, value: a.Value}
			}, nil
		}
		return headerLayer(a.Name, func() string { return a.Value.Reveal() }), nil
	case catalog.AuthBearer:
		return headerLayer("Authorization", func() string { return "Bearer " + a.Value.Reveal() }), nil
	case catalog.AuthBasic:
		return headerLayer("Authorization", func() string {
			return "Basic " + base64.StdEncoding.EncodeToString([]byte(a.Username.Reveal()+":"+a.Password.Reveal()))
		}), nil
	case catalog.AuthForward:
		return func(next http.RoundTripper) http.RoundTripper {
			return &forward{next: next, upstream: u.Name}
		}, nil
	case catalog.AuthClientCredentials, catalog.AuthRefreshToken, catalog.AuthTokenExchange:
		src, err := newTokenSource(u, opts)
		if err != nil {
			return nil, err
		}
		return func(next http.RoundTripper) http.RoundTripper {
			return &oauthLayer{next: next, src: src}
		}, nil
	}
	return nil, fmt.Errorf("upstream %s: unsupported auth type %q", u.Name, a.Type)
}

// withHeader is a shallow copy of req with its own header map, as
// RoundTrip must not modify the request it is given.
func withHeader(req *http.Request, name, value string) *http.Request {
	r := new(http.Request)
	*r = *req
	r.Header = make(http.Header, len(req.Header)+1)
	for k, v := range req.Header {
		r.Header[k] = v
	}
	r.Header.Set(name, value)
	return r
}

type staticHeader struct {
	next  http.RoundTripper
	name  string
	value func() string
}

func headerLayer(name string, value func() string) Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return &staticHeader{next: next, name: name, value: value}
	}
}

func (s *staticHeader) RoundTrip(req *http.Request) (*http.Response, error) {
	v := s.value()
	noteCredential(req.Context(), v)
	return s.next.RoundTrip(withHeader(req, s.name, v))
}

// queryKey adds the API key as a query parameter. Errors never show it:
// [Error] prints URLs without their query.
type queryKey struct {
	next  http.RoundTripper
	name  string
	value catalog.Secret
}

func (q *queryKey) RoundTrip(req *http.Request) (*http.Response, error) {
	r := new(http.Request)
	*r = *req
	u := *req.URL
	v := u.Query()
	v.Set(q.name, q.value.Reveal())
	noteCredential(req.Context(), q.value.Reveal())
	u.RawQuery = v.Encode()
	r.URL = &u
	return q.next.RoundTrip(r)
}

// forward sends the caller's own bearer token, for upstreams that trust
// the same issuer as Toolbus.
type forward struct {
	next     http.RoundTripper
	upstream string
}

func (f *forward) RoundTrip(req *http.Request) (*http.Response, error) {
	tok := callerToken(req.Context())
	if tok == "" {
		closeBody(req)
		return nil, errNoCallerToken(f.upstream)
	}
	noteCredential(req.Context(), tok)
	return f.next.RoundTrip(withHeader(req, "Authorization", "Bearer "+tok))
}

func errNoCallerToken(upstream string) error {
	return toolerr.Err(&toolerr.ToolError{
		Class: toolbusv1.ErrorClass_ERROR_CLASS_UNAUTHENTICATED,
		Code:  toolerr.CodeUnauthenticated,
		Message: "upstream " + upstream + " needs the caller's own OAuth token, but this call carries none " +
			"(it came over stdio, with an API key, or without authentication); retrying will not help",
	})
}

// oauthLayer sets a token from src and, when the upstream answers 401,
// replaces the token once and sends the request again.
type oauthLayer struct {
	next http.RoundTripper
	src  tokenSource
}

func (o *oauthLayer) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	tok, err := o.src.token(ctx)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := o.next.RoundTrip(withHeader(req, "Authorization", authorization(ctx, tok)))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	// A 401 usually means the token was revoked or expired early: one
	// fresh token, one more try, if the body can be sent again.
	retry := req
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return resp, nil
		}
		body, gerr := req.GetBody()
		if gerr != nil {
			return resp, nil
		}
		retry = new(http.Request)
		*retry = *req
		retry.Body = body
	}
	o.src.invalidate(ctx, tok)
	fresh, terr := o.src.token(ctx)
	if terr != nil {
		closeBody(retry)
		return resp, nil // the upstream's own 401 says more than the token error
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return o.next.RoundTrip(withHeader(retry, "Authorization", authorization(ctx, fresh)))
}

// authorization is the header value for tok. It is always Bearer: the
// token_type of an exchanged token may be N_A (RFC 8693), and schemes
// that need a proof of possession (DPoP) are not supported.
func authorization(ctx context.Context, tok *oauth2.Token) string {
	noteCredential(ctx, tok.AccessToken)
	return "Bearer " + tok.AccessToken
}

// closeBody honours RoundTrip's contract of closing the body on error.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// tokenSource hands out access tokens for one upstream.
type tokenSource interface {
	token(ctx context.Context) (*oauth2.Token, error)
	// invalidate drops tok if it is still the one cached for ctx's caller.
	invalidate(ctx context.Context, tok *oauth2.Token)
}

// tokenError turns a token endpoint failure into a tool error. It quotes
// only the status and the RFC 6749 error code, never the response body,
// which may echo what was sent.
func tokenError(upstream string, err error) error {
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re):
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		what := fmt.Sprintf("HTTP %d", status)
		if re.ErrorCode != "" && isTokenCode(re.ErrorCode) {
			what += " " + re.ErrorCode
		}
		if status >= 500 || status == http.StatusTooManyRequests {
			return toolerr.Err(&toolerr.ToolError{
				Class:     toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_UNREACHABLE,
				Code:      toolerr.CodeUnreachable,
				Message:   "the token endpoint of upstream " + upstream + " failed (" + what + "); retrying later may help",
				Retryable: true,
			})
		}
		return toolerr.Err(&toolerr.ToolError{
			Class:   toolbusv1.ErrorClass_ERROR_CLASS_UNAUTHENTICATED,
			Code:    toolerr.CodeUnauthenticated,
			Message: "the token endpoint of upstream " + upstream + " refused Toolbus's credentials (" + what + "); retrying will not help until the upstream credentials in the catalog are fixed",
		})
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return err
	}
	return toolerr.Err(&toolerr.ToolError{
		Class:     toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_UNREACHABLE,
		Code:      toolerr.CodeUnreachable,
		Message:   "Toolbus could not get a token for upstream " + upstream + " from its token endpoint (" + tokenErrText(err) + "); retrying later may help",
		Retryable: true,
	})
}

// tokenErrText keeps the innermost cause of a transport error (such as
// "connection refused"): the outer layers quote the token URL.
func tokenErrText(err error) string {
	inner := innermost(err).Error()
	if len(inner) > 120 {
		inner = inner[:120]
	}
	return inner
}

// isTokenCode accepts RFC 6749 error codes (NQSCHAR without spaces), so a
// server cannot smuggle arbitrary text into the message.
func isTokenCode(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
