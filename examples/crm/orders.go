package crm

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func (s *Server) getOrder(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "order")
	if !ok {
		return
	}
	o, ok := s.store.order(id)
	if !ok {
		writeNotFound(w, "order", id)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

// orderInput is the body of POST /orders, as JSON or as a Stripe-style form
// (metadata[key]=value).
type orderInput struct {
	CustomerID  int64             `json:"customer_id"`
	Amount      int64             `json:"amount"`
	Currency    string            `json:"currency"`
	Description string            `json:"description"`
	Metadata    map[string]string `json:"metadata"`
}

var currencyRE = regexp.MustCompile(`^[a-z]{3}$`)

const (
	maxMetadataKeys  = 50
	maxMetadataKey   = 40
	maxMetadataValue = 500
)

func (s *Server) createOrder(w http.ResponseWriter, r *http.Request) {
	var in orderInput
	switch mediaType(r) {
	case "application/x-www-form-urlencoded":
		b, ok := readBody(w, r)
		if !ok {
			return
		}
		form, err := url.ParseQuery(string(b))
		if err != nil {
			writeError(w, http.StatusBadRequest, codeInvalidRequest, "request body is not valid form encoding: "+err.Error())
			return
		}
		if fields := decodeOrderForm(form, &in); len(fields) > 0 {
			writeFieldErrors(w, fields)
			return
		}
	default:
		if !decodeJSONBody(w, r, &in) {
			return
		}
	}
	in.Currency = strings.ToLower(in.Currency)
	if fields := validateOrder(in); len(fields) > 0 {
		writeFieldErrors(w, fields)
		return
	}
	if in.Metadata == nil {
		in.Metadata = map[string]string{}
	}
	o, ok := s.store.createOrder(Order{
		CustomerID:  in.CustomerID,
		Amount:      in.Amount,
		Currency:    in.Currency,
		Status:      "pending",
		Description: in.Description,
		Metadata:    in.Metadata,
	})
	if !ok {
		writeFieldErrors(w, []FieldError{{"customer_id", "not_found", fmt.Sprintf("customer %d not found", in.CustomerID)}})
		return
	}
	w.Header().Set("Location", fmt.Sprintf("%s/orders/%d", APIPrefix, o.ID))
	writeJSON(w, http.StatusCreated, o)
}

// decodeOrderForm fills in from form fields; nested keys follow Stripe's
// bracket convention, metadata[key]=value. Unknown fields are errors.
func decodeOrderForm(form url.Values, in *orderInput) []FieldError {
	var fields []FieldError
	integer := func(name string, dst *int64) {
		n, err := strconv.ParseInt(form.Get(name), 10, 64)
		if err != nil {
			fields = append(fields, FieldError{name, "type", name + " must be an integer"})
			return
		}
		*dst = n
	}
	for _, name := range slices.Sorted(maps.Keys(form)) {
		values := form[name]
		if len(values) > 1 {
			fields = append(fields, FieldError{name, "repeated", name + " must be given once"})
			continue
		}
		switch name {
		case "customer_id":
			integer(name, &in.CustomerID)
		case "amount":
			integer(name, &in.Amount)
		case "currency":
			in.Currency = values[0]
		case "description":
			in.Description = values[0]
		default:
			key, ok := strings.CutPrefix(name, "metadata[")
			key, ok2 := strings.CutSuffix(key, "]")
			if !ok || !ok2 || key == "" || strings.ContainsAny(key, "[]") {
				fields = append(fields, FieldError{name, "unknown", "unknown field " + name})
				continue
			}
			if in.Metadata == nil {
				in.Metadata = make(map[string]string)
			}
			in.Metadata[key] = values[0]
		}
	}
	return fields
}

func validateOrder(in orderInput) []FieldError {
	var fields []FieldError
	if in.CustomerID <= 0 {
		fields = append(fields, FieldError{"customer_id", "required", "customer_id is required"})
	}
	if in.Amount <= 0 {
		fields = append(fields, FieldError{"amount", "invalid", "amount must be a positive integer in minor units"})
	}
	if !currencyRE.MatchString(in.Currency) {
		fields = append(fields, FieldError{"currency", "invalid", "currency must be a three-letter ISO 4217 code"})
	}
	if len(in.Metadata) > maxMetadataKeys {
		fields = append(fields, FieldError{"metadata", "too_many", fmt.Sprintf("metadata allows at most %d keys", maxMetadataKeys)})
	}
	for _, k := range slices.Sorted(maps.Keys(in.Metadata)) {
		v := in.Metadata[k]
		if len(k) > maxMetadataKey || len(v) > maxMetadataValue {
			fields = append(fields, FieldError{"metadata[" + k + "]", "too_long",
				fmt.Sprintf("metadata keys are at most %d bytes and values at most %d", maxMetadataKey, maxMetadataValue)})
		}
	}
	return fields
}
