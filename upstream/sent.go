package upstream

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"sync"
)

// sentKey marks the context of one [Client.Do] with the credentials its
// requests carried.
type sentKey struct{}

// sentCredentials are the credential values the auth layer put on the
// requests of one call: static keys, and the tokens known only at run time
// (the caller's forwarded token, client-credentials, refresh-token and
// exchanged access tokens). An upstream that refuses a request often
// quotes what it was sent; [Client.Do] removes these values from error
// answers so that they reach no tool error, log or dead letter.
type sentCredentials struct {
	mu   sync.Mutex
	vals []string
}

// minRedacted is the shortest value redacted: shorter ones would mangle
// the text more than they protect.
const minRedacted = 4

// noteCredential records header or parameter value v (and, for
// "Bearer <token>"-like values, each long word of it) as sent with ctx's
// call.
func noteCredential(ctx context.Context, v string) {
	s, ok := ctx.Value(sentKey{}).(*sentCredentials)
	if !ok || len(v) < minRedacted {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addLocked(v)
	if e := url.QueryEscape(v); e != v {
		s.addLocked(e)
	}
	for _, w := range strings.Fields(v) {
		if len(w) >= 8 && w != v {
			s.addLocked(w)
		}
	}
}

func (s *sentCredentials) addLocked(v string) {
	for _, have := range s.vals {
		if have == v {
			return
		}
	}
	s.vals = append(s.vals, v)
}

// redact replaces every recorded credential in body and in the values of
// h (both changed in place when needed).
func (s *sentCredentials) redact(body []byte, h map[string][]string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.vals {
		if bytes.Contains(body, []byte(v)) {
			body = bytes.ReplaceAll(body, []byte(v), []byte("[redacted]"))
		}
		for _, hv := range h {
			for i := range hv {
				if strings.Contains(hv[i], v) {
					hv[i] = strings.ReplaceAll(hv[i], v, "[redacted]")
				}
			}
		}
	}
	return body
}
