package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/mcpauth"
)

// cookieName is the session cookie. Its value is a random session id; the
// credential itself never goes back to the browser.
const cookieName = "toolbus_console"

// principal is who makes a request.
type principal struct {
	// who names the caller for the page header (never a token).
	who string
	// csrf must accompany every state-changing request made with the
	// session cookie; empty for bearer requests (no ambient credential).
	csrf string
	// sid is the session id, for logout.
	sid string
}

// session is a browser session as stored in bus.BucketConsoleSessions,
// under sessionKey of its id: any replica serving the console reads it.
type session struct {
	Who     string    `json:"who"`
	CSRF    string    `json:"csrf"`
	Expires time.Time `json:"expires"`
	// KeySHA256 is, for a session opened with an API key, the key's
	// SHA-256 (hex, as the catalog configures it): every request checks
	// that the key is still configured with the admin scope.
	KeySHA256 string `json:"key_sha256,omitempty"`
}

// keyChecker is a Verifier whose API keys can change while sessions live
// (mcpauth.Authenticator, on hot reload).
type keyChecker interface {
	APIKeyIdentity(sum [sha256.Size]byte) *mcpauth.Identity
}

// sessionKey is where a session is stored: the SHA-256 of its id, so that
// reading the bucket gives no cookie to replay.
func sessionKey(sid string) string {
	sum := sha256.Sum256([]byte(sid))
	return hex.EncodeToString(sum[:])
}

// authn decides who may use the console.
type authn struct {
	verify Verifier
	scope  string
	open   bool
	ttl    time.Duration
	secure bool
	now    func() time.Time
	// openCSRF protects the demo's open console against cross-site forms.
	openCSRF string

	// sessions is bus.BucketConsoleSessions, opened by Start.
	sessions atomic.Pointer[jetstream.KeyValue]
}

func newAuthn(o Options) *authn {
	return &authn{
		verify: o.Auth, scope: o.AdminScope, open: o.Open, ttl: min(o.SessionTTL, bus.ConsoleSessionMaxTTL), secure: o.SecureCookies, now: o.Now,
		openCSRF: randomToken(),
	}
}

// errNoSessions: the session bucket is not open (the console is not
// started, or the bus is unreachable).
var errNoSessions = errors.New("console sessions are not available")

func (a *authn) store() (jetstream.KeyValue, error) {
	kv := a.sessions.Load()
	if kv == nil {
		return nil, errNoSessions
	}
	return *kv, nil
}

// errNotAdmin: the credential is valid but lacks the admin scope.
var errNotAdmin = errors.New("credential lacks the admin scope")

// check verifies a credential and its admin scope.
func (a *authn) check(ctx context.Context, token string) (*mcpauth.Identity, error) {
	id, err := a.verify.Verify(ctx, token)
	if err != nil {
		return nil, err
	}
	if !id.Has([]string{a.scope}) {
		return id, errNotAdmin
	}
	return id, nil
}

// identify returns the request's principal. ok is false when the request
// carries no usable credential; err is errNotAdmin for a valid non-admin
// bearer credential.
func (a *authn) identify(r *http.Request) (p principal, ok bool, err error) {
	if a.open {
		return principal{who: "open console (no authentication)", csrf: a.openCSRF}, true, nil
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, found := strings.Cut(strings.TrimSpace(h), " ")
		if !found || !strings.EqualFold(scheme, "Bearer") {
			return principal{}, false, nil
		}
		id, err := a.check(r.Context(), strings.TrimSpace(tok))
		if err != nil {
			return principal{}, false, err
		}
		return principal{who: id.String()}, true, nil
	}
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return principal{}, false, nil
	}
	kv, err := a.store()
	if err != nil {
		return principal{}, false, err
	}
	entry, err := kv.Get(r.Context(), sessionKey(ck.Value))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return principal{}, false, nil
	case err != nil:
		return principal{}, false, fmt.Errorf("read console session: %w", err)
	}
	var s session
	if err := json.Unmarshal(entry.Value(), &s); err != nil {
		return principal{}, false, nil // not a session this version wrote
	}
	if !a.now().Before(s.Expires) || !a.keyStillAdmin(s.KeySHA256) {
		_ = kv.Delete(r.Context(), sessionKey(ck.Value))
		return principal{}, false, nil
	}
	return principal{who: s.Who, csrf: s.CSRF, sid: ck.Value}, true, nil
}

// keyStillAdmin reports whether the API key a session was opened with (by
// its SHA-256, hex) is still configured with the admin scope; true for
// sessions opened otherwise (an OAuth token's session ends with it).
func (a *authn) keyStillAdmin(keySHA256 string) bool {
	if keySHA256 == "" {
		return true
	}
	kc, ok := a.verify.(keyChecker)
	if !ok {
		return true
	}
	var sum [sha256.Size]byte
	if n, err := hex.Decode(sum[:], []byte(keySHA256)); err != nil || n != len(sum) {
		return false
	}
	id := kc.APIKeyIdentity(sum)
	return id != nil && id.Has([]string{a.scope})
}

// login opens a session for an admin credential and sets its cookie.
func (a *authn) login(w http.ResponseWriter, r *http.Request, token string) error {
	id, err := a.check(r.Context(), token)
	if err != nil {
		return err
	}
	kv, err := a.store()
	if err != nil {
		return err
	}
	now := a.now()
	exp := now.Add(a.ttl)
	if !id.Expiry.IsZero() && id.Expiry.Before(exp) {
		exp = id.Expiry
	}
	sid := randomToken()
	rec := session{Who: id.String(), CSRF: randomToken(), Expires: exp}
	if id.Method == mcpauth.MethodAPIKey {
		sum := sha256.Sum256([]byte(token))
		rec.KeySHA256 = hex.EncodeToString(sum[:])
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := kv.Create(r.Context(), sessionKey(sid), data); err != nil {
		return fmt.Errorf("store console session: %w", err)
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: sid, Path: BasePath + "/",
		Expires: exp, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: a.secure || r.TLS != nil,
	})
	return nil
}

func (a *authn) logout(w http.ResponseWriter, r *http.Request, p principal) {
	if p.sid != "" {
		if kv, err := a.store(); err == nil {
			_ = kv.Delete(r.Context(), sessionKey(p.sid))
		}
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: BasePath + "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: a.secure || r.TLS != nil})
}

type principalKey struct{}

func principalFrom(ctx context.Context) principal {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p
}

// isAPI tells JSON and event-stream routes from pages: they get 401/403
// instead of a redirect to the login page.
func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, BasePath+"/api/") }

// protect lets only admins through. A state-changing request made with
// the session cookie must carry the session's CSRF token (form field csrf
// or header X-CSRF-Token); cross-origin ones are refused before that by
// http.CrossOriginProtection.
func (c *Console) protect(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok, err := c.auth.identify(r)
		switch {
		case errors.Is(err, errNotAdmin):
			c.log.Info("console refused: not an admin", "remote", r.RemoteAddr, "path", r.URL.Path)
			c.refuse(w, r, http.StatusForbidden, "This credential is valid but lacks the "+c.opts.AdminScope+" scope.")
			return
		case err != nil && !errors.Is(err, mcpauth.ErrInvalidToken):
			c.log.Error("console credentials could not be checked", "error", err)
			c.refuse(w, r, http.StatusServiceUnavailable, "Credentials could not be checked right now; try again.")
			return
		case !ok:
			if isAPI(r) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="toolbus console", scope="`+c.opts.AdminScope+`"`)
				c.refuse(w, r, http.StatusUnauthorized, "Authentication required.")
				return
			}
			http.Redirect(w, r, BasePath+"/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && p.csrf != "" {
			tok := r.Header.Get("X-CSRF-Token")
			if tok == "" {
				tok = r.PostFormValue("csrf")
			}
			if !constantTimeEqual(tok, p.csrf) {
				c.refuse(w, r, http.StatusForbidden, "The form expired or came from elsewhere; reload the page and try again.")
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// refuse answers an error as JSON on API routes and as a page elsewhere.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if isAPI(r) {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	c.render(w, r, status, "error", &errorPage{Status: status, Message: msg})
}

func isInvalid(err error) bool { return errors.Is(err, mcpauth.ErrInvalidToken) }
