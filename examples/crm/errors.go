package crm

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Error codes used in error bodies. They are part of the documented API.
const (
	codeNotFound           = "not_found"
	codeMethodNotAllowed   = "method_not_allowed"
	codeInvalidRequest     = "invalid_request"
	codeValidationFailed   = "validation_failed"
	codeUnauthorized       = "unauthorized"
	codeRateLimited        = "rate_limited"
	codeIdempotencyReuse   = "idempotency_key_reused"
	codeUnsupportedMedia   = "unsupported_media_type"
	codeServiceUnavailable = "service_unavailable"
	codeInternal           = "internal_error"
)

// FieldError names one invalid field of a request body.
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type errorDetail struct {
	Code    string       `json:"code"`
	Message string       `json:"message"`
	Fields  []FieldError `json:"fields,omitempty"`
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only reachable with a programming error in a response type.
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal_error","message":"cannot encode response"}}`)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg}})
}

func writeFieldErrors(w http.ResponseWriter, fields []FieldError) {
	writeJSON(w, http.StatusUnprocessableEntity, errorBody{Error: errorDetail{
		Code:    codeValidationFailed,
		Message: "request body has invalid fields",
		Fields:  fields,
	}})
}
