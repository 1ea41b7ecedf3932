package crm

import (
	"fmt"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
)

// customerList is the body of GET /customers. Which fields are set depends
// on the pagination style of the request.
type customerList struct {
	Data       []Customer `json:"data"`
	HasMore    bool       `json:"has_more"`
	NextCursor string     `json:"next_cursor,omitempty"`
	Page       int        `json:"page,omitempty"`
	PerPage    int        `json:"per_page,omitempty"`
	Offset     *int       `json:"offset,omitempty"`
	Limit      int        `json:"limit,omitempty"`
	Total      *int       `json:"total,omitempty"`
}

func (s *Server) listCustomers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := parsePage(q, true)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, err.Error())
		return
	}
	f := customerFilter{email: q.Get("email"), status: q.Get("status")}
	if f.status != "" && f.status != StatusActive && f.status != StatusChurned {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "invalid parameter status: must be active or churned")
		return
	}
	var body customerList
	switch p.style {
	case styleCursor:
		data, more := s.store.listCustomersAfter(f, p.after, p.limit)
		body = customerList{Data: data, HasMore: more}
		if more {
			body.NextCursor = encodeCursor(data[len(data)-1].ID)
			setLinks(w, pageURL(r, map[string]string{"cursor": body.NextCursor, "limit": strconv.Itoa(p.limit)}), "")
		}
	case stylePage:
		data, total := s.store.listCustomersOffset(f, (p.page-1)*p.limit, p.limit)
		body = customerList{Data: data, HasMore: p.page*p.limit < total, Page: p.page, PerPage: p.limit, Total: &total}
		var next, prev string
		if body.HasMore {
			next = pageURL(r, map[string]string{"page": strconv.Itoa(p.page + 1), "per_page": strconv.Itoa(p.limit)})
		}
		if p.page > 1 {
			prev = pageURL(r, map[string]string{"page": strconv.Itoa(p.page - 1), "per_page": strconv.Itoa(p.limit)})
		}
		setLinks(w, next, prev)
		w.Header().Set("X-Total-Count", strconv.Itoa(total))
	case styleOffset:
		data, total := s.store.listCustomersOffset(f, p.offset, p.limit)
		body = customerList{Data: data, HasMore: p.offset+p.limit < total, Offset: &p.offset, Limit: p.limit, Total: &total}
		var next, prev string
		if body.HasMore {
			next = pageURL(r, map[string]string{"offset": strconv.Itoa(p.offset + p.limit), "limit": strconv.Itoa(p.limit)})
		}
		if p.offset > 0 {
			prev = pageURL(r, map[string]string{"offset": strconv.Itoa(max(0, p.offset-p.limit)), "limit": strconv.Itoa(p.limit)})
		}
		setLinks(w, next, prev)
		w.Header().Set("X-Total-Count", strconv.Itoa(total))
	}
	writeJSON(w, http.StatusOK, body)
}

// pathID parses the {id} path value; ok is false (and a 404 written) when
// it is not a positive integer, since no such record can exist.
func pathID(w http.ResponseWriter, r *http.Request, kind string) (int64, bool) {
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("%s %s not found", kind, v))
		return 0, false
	}
	return id, true
}

func writeNotFound(w http.ResponseWriter, kind string, id int64) {
	writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("%s %d not found", kind, id))
}

func (s *Server) getCustomer(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "customer")
	if !ok {
		return
	}
	c, ok := s.store.customer(id)
	if !ok {
		writeNotFound(w, "customer", id)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// customerInput is the body of POST /customers.
type customerInput struct {
	Name    string `json:"name"`
	Email   string `json:"email"`
	Status  string `json:"status"`
	Company string `json:"company"`
}

func validName(name string, fields []FieldError) []FieldError {
	switch {
	case strings.TrimSpace(name) == "":
		return append(fields, FieldError{"name", "required", "name is required"})
	case len(name) > 200:
		return append(fields, FieldError{"name", "too_long", "name must be at most 200 bytes"})
	}
	return fields
}

func validEmail(email string, fields []FieldError) []FieldError {
	if email == "" {
		return append(fields, FieldError{"email", "required", "email is required"})
	}
	a, err := mail.ParseAddress(email)
	_, domain, _ := strings.Cut(email, "@")
	if err != nil || a.Address != email || a.Name != "" || !strings.Contains(domain, ".") {
		return append(fields, FieldError{"email", "invalid", fmt.Sprintf("%q is not a valid email address", email)})
	}
	return fields
}

func validStatus(status string, fields []FieldError) []FieldError {
	if status != StatusActive && status != StatusChurned {
		return append(fields, FieldError{"status", "invalid", "status must be active or churned"})
	}
	return fields
}

func (s *Server) createCustomer(w http.ResponseWriter, r *http.Request) {
	var in customerInput
	if !decodeJSONBody(w, r, &in) {
		return
	}
	in.Status = cmp0(in.Status, StatusActive)
	fields := validName(in.Name, nil)
	fields = validEmail(in.Email, fields)
	fields = validStatus(in.Status, fields)
	if len(fields) > 0 {
		writeFieldErrors(w, fields)
		return
	}
	c := s.store.createCustomer(Customer{Name: strings.TrimSpace(in.Name), Email: in.Email, Status: in.Status, Company: in.Company})
	w.Header().Set("Location", fmt.Sprintf("%s/customers/%d", APIPrefix, c.ID))
	writeJSON(w, http.StatusCreated, c)
}

func (s *Server) updateCustomer(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "customer")
	if !ok {
		return
	}
	var p customerPatch
	if !decodeJSONBody(w, r, &p) {
		return
	}
	var fields []FieldError
	if p.Name != nil {
		fields = validName(*p.Name, fields)
	}
	if p.Email != nil {
		fields = validEmail(*p.Email, fields)
	}
	if p.Status != nil {
		fields = validStatus(*p.Status, fields)
	}
	if len(fields) > 0 {
		writeFieldErrors(w, fields)
		return
	}
	c, ok := s.store.updateCustomer(id, p)
	if !ok {
		writeNotFound(w, "customer", id)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) deleteCustomer(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "customer")
	if !ok {
		return
	}
	if !s.store.deleteCustomer(id) {
		writeNotFound(w, "customer", id)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// orderList is the body of GET /customers/{id}/orders.
type orderList struct {
	Data       []Order `json:"data"`
	HasMore    bool    `json:"has_more"`
	NextCursor string  `json:"next_cursor,omitempty"`
}

func (s *Server) listCustomerOrders(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "customer")
	if !ok {
		return
	}
	p, err := parsePage(r.URL.Query(), false)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, err.Error())
		return
	}
	data, more, ok := s.store.customerOrders(id, p.after, p.limit)
	if !ok {
		writeNotFound(w, "customer", id)
		return
	}
	body := orderList{Data: data, HasMore: more}
	if more {
		body.NextCursor = encodeCursor(data[len(data)-1].ID)
		setLinks(w, pageURL(r, map[string]string{"cursor": body.NextCursor, "limit": strconv.Itoa(p.limit)}), "")
	}
	writeJSON(w, http.StatusOK, body)
}
