package console

import (
	"bytes"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

//go:embed templates/*.html
var templatesFS embed.FS

//go:embed static
var staticFS embed.FS

// csp allows nothing but this origin: no inline script or style, no
// frames, no other hosts. Links to Jaeger are plain navigations.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (c *Console) routes() {
	m := http.NewServeMux()
	p := func(pattern string, h http.HandlerFunc) { m.Handle(pattern, c.protect(h)) }
	// Assets are public: the login page needs them and they hold nothing.
	m.Handle("GET "+BasePath+"/static/", c.static)
	m.HandleFunc("GET "+BasePath+"/login", c.loginPage)
	m.HandleFunc("POST "+BasePath+"/login", c.loginSubmit)
	p("POST "+BasePath+"/logout", c.logoutSubmit)
	p("GET "+BasePath+"/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, BasePath+"/calls", http.StatusSeeOther)
	})

	p("GET "+BasePath+"/calls", c.callsPage)
	p("GET "+BasePath+"/calls/{id}", c.callPage)
	p("GET "+BasePath+"/api/calls", c.apiCalls)
	p("GET "+BasePath+"/api/calls/stream", c.apiCallStream)

	p("GET "+BasePath+"/traces/{id}", c.tracePage)

	p("GET "+BasePath+"/tools", c.toolsPage)
	p("GET "+BasePath+"/api/stats", c.apiStats)

	p("GET "+BasePath+"/dlq", c.dlqPage)
	p("GET "+BasePath+"/dlq/{id}", c.deadLetterPage)
	p("POST "+BasePath+"/dlq/{id}/replay", c.replaySubmit)
	p("POST "+BasePath+"/dlq/{id}/discard", c.discardSubmit)
	p("POST "+BasePath+"/dlq/replay-all", c.replayAllSubmit)
	p("GET "+BasePath+"/api/dlq", c.apiDeadLetters)
	p("POST "+BasePath+"/api/dlq/{id}/replay", c.apiReplay)
	p("POST "+BasePath+"/api/dlq/{id}/discard", c.apiDiscard)

	p("GET "+BasePath+"/webhooks", c.webhooksPage)
	p("GET "+BasePath+"/webhooks/{seq}", c.webhookPage)
	p("POST "+BasePath+"/webhooks/replay", c.webhookReplaySubmit)

	p("GET "+BasePath+"/state", c.statePage)
	p("GET "+BasePath+"/state/{projection}", c.projectionPage)
	p("GET "+BasePath+"/state/{projection}/entity", c.entityPage)

	p(BasePath+"/", func(w http.ResponseWriter, r *http.Request) {
		c.refuse(w, r, http.StatusNotFound, "No such page.")
	})

	cop := http.NewCrossOriginProtection()
	c.mux = http.NewServeMux()
	c.mux.Handle("/", securityHeaders(cop.Handler(m)))
}

// securityHeaders sets the headers every console response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, BasePath+"/static/") {
			h.Set("Cache-Control", "no-store")
		} else {
			h.Set("Cache-Control", "private, max-age=300")
		}
		next.ServeHTTP(w, r)
	})
}

// page is what every template gets.
type page struct {
	Title string
	// Nav is the section highlighted in the navigation.
	Nav  string
	Who  string
	CSRF string
	Open bool
	// Flash is a one-line notice at the top of the page.
	Flash     string
	JaegerURL string
	Data      any
}

type errorPage struct {
	Status  int
	Message string
}

var pageTitles = map[string]string{
	"login": "Sign in", "error": "Error",
	"calls": "Live calls", "call": "Call", "trace": "Trace",
	"tools": "Tools and upstreams",
	"dlq":   "Dead letters", "deadletter": "Dead letter", "replayed": "Replay",
	"webhooks": "Webhooks", "webhook": "Webhook event", "webhookreplay": "Webhook replay",
	"state": "State", "projection": "Projection", "entity": "Entity",
}

var navOf = map[string]string{
	"calls": "calls", "call": "calls", "trace": "calls", "tools": "tools",
	"dlq": "dlq", "deadletter": "dlq", "replayed": "dlq",
	"webhooks": "webhooks", "webhook": "webhooks", "webhookreplay": "webhooks",
	"state": "state", "projection": "state", "entity": "state",
}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"ms": fmtMS,
		"offset": func(ms float64) string {
			if ms <= 0 {
				return "0"
			}
			return fmtMS(ms)
		},
		"pct":      func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
		"rate":     func(f float64) string { return fmt.Sprintf("%.1f", f) },
		"ts":       fmtTime,
		"ago":      fmtAgo,
		"pathesc":  url.PathEscape,
		"queryesc": url.QueryEscape,
		"jaeger": func(base, traceID string) string {
			if base == "" || traceID == "" {
				return ""
			}
			return base + "/trace/" + url.PathEscape(traceID)
		},
	}
	pages := map[string]*template.Template{}
	for name := range pageTitles {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templatesFS, "templates/layout.html", "templates/partials.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes a page. Templates render into a buffer first, so a
// template error is a clean 500 rather than half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	c.renderFlash(w, r, status, name, data, "")
}

func (c *Console) renderFlash(w http.ResponseWriter, r *http.Request, status int, name string, data any, flash string) {
	p := principalFrom(r.Context())
	pg := &page{
		Title: pageTitles[name], Nav: navOf[name], Who: p.who, CSRF: p.csrf, Open: c.opts.Open,
		Flash: flash, JaegerURL: c.opts.JaegerURL, Data: data,
	}
	var buf bytes.Buffer
	if err := c.pages[name].Execute(&buf, pg); err != nil {
		c.log.Error("console template", "page", name, "error", err)
		http.Error(w, "page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func fmtMS(ms float64) string {
	switch {
	case ms <= 0:
		return "–"
	case ms < 1:
		return fmt.Sprintf("%.0f µs", ms*1000)
	case ms < 1000:
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.2f s", ms/1000)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z")
}

func fmtAgo(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(math.Round(d.Hours()/24)))
}

// loginPage shows the sign-in form (or skips it for an open console).
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.opts.Open {
		http.Redirect(w, r, BasePath+"/calls", http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "login", &loginView{Next: safeNext(r.URL.Query().Get("next")), Scope: c.opts.AdminScope})
}

type loginView struct {
	Next    string
	Scope   string
	Message string
}

func (c *Console) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if c.opts.Open {
		http.Redirect(w, r, BasePath+"/calls", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	next := safeNext(r.PostFormValue("next"))
	token := strings.TrimSpace(r.PostFormValue("token"))
	err := c.auth.login(w, r, token)
	if err == nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	v := &loginView{Next: next, Scope: c.opts.AdminScope}
	status := http.StatusUnauthorized
	switch {
	case err == errNotAdmin:
		status = http.StatusForbidden
		v.Message = "This credential is valid but lacks the " + c.opts.AdminScope + " scope."
	case isInvalid(err):
		v.Message = "This credential was not accepted."
	default:
		status = http.StatusServiceUnavailable
		v.Message = "Credentials could not be checked right now; try again."
		c.log.Error("console login: credentials could not be checked", "error", err)
	}
	c.log.Info("console sign-in refused", "status", status, "remote", r.RemoteAddr)
	c.render(w, r, status, "login", v)
}

func (c *Console) logoutSubmit(w http.ResponseWriter, r *http.Request) {
	c.auth.logout(w, r, principalFrom(r.Context()))
	http.Redirect(w, r, BasePath+"/login", http.StatusSeeOther)
}

// safeNext keeps redirects after sign-in inside the console: a path
// (no scheme or host) that is still under BasePath once cleaned.
func safeNext(next string) string {
	const home = BasePath + "/calls"
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || strings.ContainsAny(next, "\\\r\n") || strings.HasPrefix(next, "//") {
		return home
	}
	clean := path.Clean(u.Path)
	if !strings.HasPrefix(clean, BasePath+"/") || strings.HasPrefix(clean, BasePath+"/login") {
		return home
	}
	u.Path, u.RawPath = clean, ""
	return u.String()
}
