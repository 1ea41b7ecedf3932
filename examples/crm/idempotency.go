package crm

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"sync"
)

// maxBodyBytes bounds request bodies the API reads.
const maxBodyBytes = 1 << 20

// idempotencyStore remembers the first response per Idempotency-Key, like
// Stripe: a retry with the same key and the same request gets that response
// back; the same key with a different request is refused. Entries are kept
// for the life of the server.
type idempotencyStore struct {
	mu      sync.Mutex
	entries map[string]*idemEntry
}

type idemEntry struct {
	fingerprint [32]byte
	done        chan struct{}     // closed when the first request finished
	resp        *bufferedResponse // nil if the first request failed with 5xx
}

func newIdempotencyStore() *idempotencyStore {
	return &idempotencyStore{entries: make(map[string]*idemEntry)}
}

func fingerprint(method, path string, body []byte) [32]byte {
	h := sha256.New()
	io.WriteString(h, method)
	h.Write([]byte{0})
	io.WriteString(h, path)
	h.Write([]byte{0})
	h.Write(body)
	var fp [32]byte
	h.Sum(fp[:0])
	return fp
}

func isUnsafe(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func (s *Server) idempotent(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		if key == "" || !isUnsafe(r.Method) || !isAPIPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
		if err != nil {
			writeError(w, http.StatusBadRequest, codeInvalidRequest, "cannot read request body")
			return
		}
		if len(body) > maxBodyBytes {
			writeError(w, http.StatusRequestEntityTooLarge, codeInvalidRequest, "request body exceeds 1 MiB")
			return
		}
		fp := fingerprint(r.Method, r.URL.EscapedPath(), body)
		for {
			s.idem.mu.Lock()
			e := s.idem.entries[key]
			if e == nil {
				e = &idemEntry{fingerprint: fp, done: make(chan struct{})}
				s.idem.entries[key] = e
				s.idem.mu.Unlock()
				s.executeOnce(w, r, next, key, body, e)
				return
			}
			s.idem.mu.Unlock()
			if e.fingerprint != fp {
				s.stats.key(key, func(k *KeyStats) { k.Conflicts++ })
				writeError(w, http.StatusConflict, codeIdempotencyReuse,
					"Idempotency-Key "+key+" was already used with a different request")
				return
			}
			// A concurrent retry waits for the first attempt rather than
			// racing it, so the operation runs once.
			select {
			case <-e.done:
			case <-r.Context().Done():
				return
			}
			if e.resp != nil {
				s.stats.key(key, func(k *KeyStats) { k.Replays++ })
				e.resp.writeTo(w, http.Header{"Idempotent-Replayed": {"true"}})
				return
			}
			// The first attempt failed and was forgotten: try to run it.
		}
	})
}

func (s *Server) executeOnce(w http.ResponseWriter, r *http.Request, next http.Handler, key string, body []byte, e *idemEntry) {
	s.stats.key(key, func(k *KeyStats) { k.Executions++ })
	rec := newBufferedResponse()
	r.Body = io.NopCloser(bytes.NewReader(body))
	completed := false
	defer func() {
		s.idem.mu.Lock()
		// Server errors are not stored, so a retry runs the operation
		// again; that is what a 5xx promises the client.
		if completed && rec.statusCode() < 500 {
			e.resp = rec
		} else {
			delete(s.idem.entries, key)
		}
		close(e.done)
		s.idem.mu.Unlock()
	}()
	next.ServeHTTP(rec, r)
	completed = true
	rec.writeTo(w, nil)
}
