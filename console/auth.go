package console

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/toolbus/toolbus/mcpauth"
)

// cookieName is the session cookie. Its value is a random session id; the
// credential itself never goes back to the browser.
const cookieName = "toolbus_console"

// maxSessions bounds the sessions kept; the oldest is dropped beyond it.
const maxSessions = 10000

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

type session struct {
	who     string
	csrf    string
	expires time.Time
	created time.Time
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

	mu       sync.Mutex
	sessions map[string]*session
}

func newAuthn(o Options) *authn {
	return &authn{
		verify: o.Auth, scope: o.AdminScope, open: o.Open, ttl: o.SessionTTL, secure: o.SecureCookies, now: o.Now,
		openCSRF: randomToken(),
		sessions: map[string]*session{},
	}
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
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sessions[ck.Value]
	if s == nil {
		return principal{}, false, nil
	}
	if !a.now().Before(s.expires) {
		delete(a.sessions, ck.Value)
		return principal{}, false, nil
	}
	return principal{who: s.who, csrf: s.csrf, sid: ck.Value}, true, nil
}

// login opens a session for an admin credential and sets its cookie.
func (a *authn) login(w http.ResponseWriter, r *http.Request, token string) error {
	id, err := a.check(r.Context(), token)
	if err != nil {
		return err
	}
	now := a.now()
	exp := now.Add(a.ttl)
	if !id.Expiry.IsZero() && id.Expiry.Before(exp) {
		exp = id.Expiry
	}
	sid := randomToken()
	a.mu.Lock()
	for k, s := range a.sessions {
		if !now.Before(s.expires) {
			delete(a.sessions, k)
		}
	}
	if len(a.sessions) >= maxSessions {
		var oldest string
		for k, s := range a.sessions {
			if oldest == "" || s.created.Before(a.sessions[oldest].created) {
				oldest = k
			}
		}
		delete(a.sessions, oldest)
	}
	a.sessions[sid] = &session{who: id.String(), csrf: randomToken(), expires: exp, created: now}
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: sid, Path: BasePath + "/",
		Expires: exp, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: a.secure || r.TLS != nil,
	})
	return nil
}

func (a *authn) logout(w http.ResponseWriter, r *http.Request, p principal) {
	if p.sid != "" {
		a.mu.Lock()
		delete(a.sessions, p.sid)
		a.mu.Unlock()
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
