package crm

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// SOAPPath is where the CRM answers SOAP 1.1 and 1.2 requests (one
// operation, GetCustomer, in namespace SOAPNamespace).
const (
	SOAPPath      = "/soap"
	SOAPNamespace = "urn:toolbus:crm"
)

// extraRoutes registers the SOAP endpoint and the batch lookup
// (GET /api/v1/customers/batch?ids=1,2,3).
func (s *Server) extraRoutes(m *http.ServeMux) {
	m.HandleFunc("POST "+SOAPPath, s.soap)
	m.HandleFunc("GET "+APIPrefix+"/customers/batch", s.batchCustomers)
}

// batchCustomers answers {"data": [...]} with the customers among ids
// that exist; unknown ids are left out (at most 100 ids).
func (s *Server) batchCustomers(w http.ResponseWriter, r *http.Request) {
	raw := strings.Split(r.URL.Query().Get("ids"), ",")
	if len(raw) > 100 {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "invalid parameter ids: at most 100 ids")
		return
	}
	data := []Customer{}
	for _, v := range raw {
		id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, codeInvalidRequest, fmt.Sprintf("invalid parameter ids: %q is not an id", v))
			return
		}
		if c, ok := s.store.customer(id); ok {
			data = append(data, c)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
}

// soap serves GetCustomer in either SOAP version (by the request's
// Content-Type). An unknown customer is a Client (1.1) or Sender (1.2)
// fault.
func (s *Server) soap(w http.ResponseWriter, r *http.Request) {
	ns, ct, sender := "http://schemas.xmlsoap.org/soap/envelope/", "text/xml; charset=utf-8", "soap:Client"
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/soap+xml") {
		ns, ct, sender = "http://www.w3.org/2003/05/soap-envelope", "application/soap+xml; charset=utf-8", "soap:Sender"
	}
	w.Header().Set("Content-Type", ct)
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var env struct {
		Body struct {
			Get *struct {
				ID string `xml:"Id"`
			} `xml:"urn:toolbus:crm GetCustomer"`
		} `xml:"Body"`
	}
	fault := func(status int, code, reason string) {
		w.WriteHeader(status)
		var b bytes.Buffer
		_ = xml.EscapeText(&b, []byte(reason))
		if sender == "soap:Sender" {
			fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="%s"><soap:Body><soap:Fault><soap:Code><soap:Value>%s</soap:Value></soap:Code><soap:Reason><soap:Text xml:lang="en">%s</soap:Text></soap:Reason></soap:Fault></soap:Body></soap:Envelope>`, ns, code, b.String())
			return
		}
		fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="%s"><soap:Body><soap:Fault><faultcode>%s</faultcode><faultstring>%s</faultstring></soap:Fault></soap:Body></soap:Envelope>`, ns, code, b.String())
	}
	status := http.StatusInternalServerError // SOAP 1.1 sends every fault as 500
	if sender == "soap:Sender" {
		status = http.StatusBadRequest
	}
	if err := xml.Unmarshal(body, &env); err != nil || env.Body.Get == nil {
		fault(status, sender, "the body must hold a GetCustomer request in "+SOAPNamespace)
		return
	}
	id, err := strconv.ParseInt(strings.TrimSpace(env.Body.Get.ID), 10, 64)
	c, ok := s.store.customer(id)
	if err != nil || !ok {
		fault(status, sender, fmt.Sprintf("customer %s not found", env.Body.Get.ID))
		return
	}
	var b bytes.Buffer
	enc := xml.NewEncoder(&b)
	_ = enc.Encode(struct {
		XMLName xml.Name `xml:"urn:toolbus:crm Customer"`
		ID      int64    `xml:"Id"`
		Name    string   `xml:"Name"`
		Email   string   `xml:"Email"`
		Status  string   `xml:"Status"`
		Company string   `xml:"Company,omitempty"`
	}{ID: c.ID, Name: c.Name, Email: c.Email, Status: c.Status, Company: c.Company})
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="%s"><soap:Body><GetCustomerResponse xmlns="%s">%s</GetCustomerResponse></soap:Body></soap:Envelope>`, ns, SOAPNamespace, b.String())
}
