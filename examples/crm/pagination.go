package crm

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

const (
	defaultPageSize = 20
	maxPageSize     = 100
)

// pageStyle is how a list request asks for its page. The API accepts three
// so that every pagination strategy of a client can be tested against it.
type pageStyle int

const (
	styleCursor pageStyle = iota // ?limit=&cursor=, body next_cursor
	stylePage                    // ?page=&per_page=
	styleOffset                  // ?offset=&limit=
)

type pageRequest struct {
	style  pageStyle
	limit  int   // page size in every style
	after  int64 // cursor style: last id of the previous page
	page   int   // page style, from 1
	offset int   // offset style
}

// badParam is a client error in a query parameter.
type badParam struct{ name, msg string }

func (e *badParam) Error() string { return fmt.Sprintf("invalid parameter %s: %s", e.name, e.msg) }

func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, &badParam{name, fmt.Sprintf("must be an integer from %d to %d", lo, hi)}
	}
	return n, nil
}

func parsePage(q url.Values, allowStyles bool) (pageRequest, error) {
	var p pageRequest
	var err error
	switch {
	case allowStyles && (q.Has("page") || q.Has("per_page")):
		p.style = stylePage
		if p.page, err = intParam(q, "page", 1, 1, 1<<30); err != nil {
			return p, err
		}
		p.limit, err = intParam(q, "per_page", defaultPageSize, 1, maxPageSize)
		return p, err
	case allowStyles && q.Has("offset"):
		p.style = styleOffset
		if p.offset, err = intParam(q, "offset", 0, 0, 1<<30); err != nil {
			return p, err
		}
		p.limit, err = intParam(q, "limit", defaultPageSize, 1, maxPageSize)
		return p, err
	}
	p.style = styleCursor
	if p.limit, err = intParam(q, "limit", defaultPageSize, 1, maxPageSize); err != nil {
		return p, err
	}
	if c := q.Get("cursor"); c != "" {
		if p.after, err = decodeCursor(c); err != nil {
			return p, err
		}
	}
	return p, nil
}

// Cursors are opaque to clients; inside they hold the last id served, so a
// walk stays correct while records are added or deleted.
func encodeCursor(lastID int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("after:" + strconv.FormatInt(lastID, 10)))
}

func decodeCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if v, ok := strings.CutPrefix(string(b), "after:"); ok {
			if id, err := strconv.ParseInt(v, 10, 64); err == nil && id >= 0 {
				return id, nil
			}
		}
	}
	return 0, &badParam{"cursor", "not a cursor returned by this API"}
}

// pageURL is the absolute URL of r with the given query changes (an empty
// value deletes the parameter), for Link headers.
func pageURL(r *http.Request, set map[string]string) string {
	q := r.URL.Query()
	for k, v := range set {
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: q.Encode()}
	return u.String()
}

// setLinks writes an RFC 8288 Link header; rels maps relation to URL.
func setLinks(w http.ResponseWriter, next, prev string) {
	var links []string
	if next != "" {
		links = append(links, fmt.Sprintf(`<%s>; rel="next"`, next))
	}
	if prev != "" {
		links = append(links, fmt.Sprintf(`<%s>; rel="prev"`, prev))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
}
