package crm

import (
	"encoding/csv"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"strconv"
	"time"
)

// echoResponse shows what the server received, so tests can prove how a
// client escaped the path, which host it called and what it sent.
type echoResponse struct {
	Method string `json:"method"`
	Host   string `json:"host"`
	// RequestURI is the request target exactly as sent on the wire.
	RequestURI string `json:"request_uri"`
	// Path is the decoded path; RawPath the original encoding when it
	// differs from the default one; EscapedPath the encoded form.
	Path        string              `json:"path"`
	RawPath     string              `json:"raw_path"`
	EscapedPath string              `json:"escaped_path"`
	Anything    string              `json:"anything"`
	RawQuery    string              `json:"raw_query"`
	Query       map[string][]string `json:"query"`
	Headers     map[string]string   `json:"headers"`
	Body        string              `json:"body"`
}

func (s *Server) echo(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	headers := make(map[string]string, len(r.Header))
	for k, v := range r.Header {
		if len(v) > 0 {
			headers[k] = v[0]
		}
	}
	query := map[string][]string(r.URL.Query())
	writeJSON(w, http.StatusOK, echoResponse{
		Method:      r.Method,
		Host:        r.Host,
		RequestURI:  r.RequestURI,
		Path:        r.URL.Path,
		RawPath:     r.URL.RawPath,
		EscapedPath: r.URL.EscapedPath(),
		Anything:    r.PathValue("anything"),
		RawQuery:    r.URL.RawQuery,
		Query:       query,
		Headers:     headers,
		Body:        string(body),
	})
}

// lookupResponse is cheap to build and carries the id asked for, so a
// benchmark can check that every answer belongs to its own call.
type lookupResponse struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Value uint32 `json:"value"`
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	h := fnv.New32a()
	io.WriteString(h, id)
	writeJSON(w, http.StatusOK, lookupResponse{ID: id, Name: "item " + id, Value: h.Sum32()})
}

type flakyResponse struct {
	OK      bool   `json:"ok"`
	Key     string `json:"key"`
	Attempt int    `json:"attempt"`
}

// flakyHandler fails the first N requests for each key with 503 and
// Retry-After: 1, then succeeds: the shape of a transient upstream outage.
func (s *Server) flakyHandler(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fail, err := intParam(q, "fail", s.opts.FlakyFailures, 0, 1000)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, err.Error())
		return
	}
	key := q.Get("key")
	s.flakyMu.Lock()
	s.flaky[key]++
	attempt := s.flaky[key]
	s.flakyMu.Unlock()
	if attempt <= fail {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, codeServiceUnavailable,
			fmt.Sprintf("temporarily unavailable (attempt %d of %d failing); retry later", attempt, fail))
		return
	}
	writeJSON(w, http.StatusOK, flakyResponse{OK: true, Key: key, Attempt: attempt})
}

func (s *Server) reportCSV(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="report.csv"`)
	cw := csv.NewWriter(w)
	cw.Write([]string{"id", "name", "email", "status", "company", "created_at"})
	for _, c := range s.store.allCustomers() {
		cw.Write([]string{strconv.FormatInt(c.ID, 10), c.Name, c.Email, c.Status, c.Company, c.CreatedAt.Format(time.RFC3339)})
	}
	cw.Flush()
}

const (
	defaultExportSize = 1 << 20
	minExportSize     = 12 // {"data":""}\n
	maxExportSize     = 256 << 20
)

// export answers exactly size bytes of valid JSON, for response size limits.
func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	size, err := intParam(r.URL.Query(), "size", defaultExportSize, minExportSize, maxExportSize)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, err.Error())
		return
	}
	writeJSONOfSize(r.Context(), w, size)
}
