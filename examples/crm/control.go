package crm

import (
	"encoding/json"
	"io"
	"net/http"
)

// controlRoutes serves the test control API. It bypasses auth, rate limits,
// faults and counters, so scripting the server never disturbs what it counts.
func (s *Server) controlRoutes() {
	m := s.control
	m.HandleFunc("GET /_stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	m.HandleFunc("DELETE /_stats", s.requireFaults(func(w http.ResponseWriter, r *http.Request) {
		s.ResetStats()
		w.WriteHeader(http.StatusNoContent)
	}))
	m.HandleFunc("GET /_faults", s.requireFaults(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, struct {
			Faults []Fault `json:"faults"`
		}{s.Faults()})
	}))
	m.HandleFunc("POST /_faults", s.requireFaults(func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		dec := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			writeError(w, http.StatusBadRequest, codeInvalidRequest, "invalid fault JSON: "+err.Error())
			return
		}
		id, err := s.AddFault(f)
		if err != nil {
			writeError(w, http.StatusBadRequest, codeInvalidRequest, err.Error())
			return
		}
		f.ID = id
		w.Header().Set("Location", "/_faults/"+id)
		writeJSON(w, http.StatusCreated, f)
	}))
	m.HandleFunc("DELETE /_faults", s.requireFaults(func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	}))
	m.HandleFunc("DELETE /_faults/{id}", s.requireFaults(func(w http.ResponseWriter, r *http.Request) {
		if !s.RemoveFault(r.PathValue("id")) {
			writeError(w, http.StatusNotFound, codeNotFound, "fault "+r.PathValue("id")+" not found")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
	})
}

func (s *Server) requireFaults(h http.HandlerFunc) http.HandlerFunc {
	if s.opts.EnableFaults {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, codeNotFound, "the fault control API is disabled (Options.EnableFaults)")
	}
}
