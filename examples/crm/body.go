package crm

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
)

// mediaType is the request's media type, lower case, without parameters.
func mediaType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ct
	}
	return mt
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, codeInvalidRequest, "request body exceeds 1 MiB")
		} else {
			writeError(w, http.StatusBadRequest, codeInvalidRequest, "cannot read request body")
		}
		return nil, false
	}
	return b, true
}

// decodeJSONBody decodes a JSON object into v strictly (unknown fields are
// errors, as they usually mean the client encoded the request wrong) and
// writes the error response when it fails.
func decodeJSONBody(w http.ResponseWriter, r *http.Request, v any) bool {
	switch mediaType(r) {
	case "", "application/json", "application/merge-patch+json":
	default:
		writeError(w, http.StatusUnsupportedMediaType, codeUnsupportedMedia,
			"Content-Type must be application/json, not "+r.Header.Get("Content-Type"))
		return false
	}
	b, ok := readBody(w, r)
	if !ok {
		return false
	}
	return decodeJSON(w, b, v)
}

func decodeJSON(w http.ResponseWriter, b []byte, v any) bool {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON value")
	}
	if err == nil {
		return true
	}
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "request body is empty; a JSON object is required")
	case errors.As(err, &typeErr) && typeErr.Field != "":
		// For map values the field is the map, so name both types.
		writeFieldErrors(w, []FieldError{{typeErr.Field, "type",
			typeErr.Field + ": got " + typeErr.Value + ", want " + jsonTypeName(typeErr.Type.Kind().String())}})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		writeFieldErrors(w, []FieldError{{name, "unknown", "unknown field " + name}})
	default:
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "request body is not valid JSON: "+err.Error())
	}
	return false
}

func jsonTypeName(kind string) string {
	switch kind {
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "a number"
	case "string":
		return "a string"
	case "map", "struct":
		return "an object"
	case "slice":
		return "an array"
	case "bool":
		return "a boolean"
	}
	return "of type " + kind
}
