package restworker

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/upstream"
)

// weatherWSDL is CDYNE's public Weather WSDL, fetched from a pinned npm
// package by testdata/fetch-wsdl.sh.
func weatherWSDL(t *testing.T) string {
	t.Helper()
	p, _ := filepath.Abs(filepath.Join("testdata", ".cache", "weather.wsdl"))
	if _, err := os.Stat(p); err != nil {
		out, err := exec.Command("bash", filepath.Join("testdata", "fetch-wsdl.sh")).CombinedOutput()
		if err != nil {
			t.Fatalf("the SOAP tests need the public weather WSDL: testdata/fetch-wsdl.sh failed: %v\n%s", err, out)
		}
	}
	return p
}

const soapPassword = "s3cret-pässword"

// soapRequest is what the SOAP server received.
type soapRequest struct {
	path, contentType, action, body string
}

// soapServer speaks SOAP 1.1 on /soap11 and SOAP 1.2 on /soap12. Its
// answers depend on the request: faults for ids "client-fault" and
// "server-fault" (1.1, both with status 500, as 1.1 requires) and ZIP
// 00000 (1.2 Sender fault with a subcode, status 400).
type soapServer struct {
	mu   sync.Mutex
	reqs []soapRequest
}

func (s *soapServer) last(t *testing.T) soapRequest {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		t.Fatal("the SOAP server received nothing")
	}
	return s.reqs[len(s.reqs)-1]
}

func (s *soapServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

func (s *soapServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	req := soapRequest{path: r.URL.Path, contentType: r.Header.Get("Content-Type"), action: r.Header.Get("SOAPAction"), body: string(b)}
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	s.mu.Unlock()
	body := string(b)
	switch r.URL.Path {
	case "/soap11":
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		env := func(inner string) string {
			return `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>` + inner + `</soap:Body></soap:Envelope>`
		}
		switch {
		case strings.Contains(body, "<crm:Id>client-fault</crm:Id>"):
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, env(`<soap:Fault><faultcode>soap:Client</faultcode><faultstring>Customer client-fault does not exist</faultstring><detail><crm:Error xmlns:crm="urn:example:crm"><crm:Code>E404</crm:Code></crm:Error></detail></soap:Fault>`))
		case strings.Contains(body, "<crm:Id>server-fault</crm:Id>"):
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, env(`<soap:Fault><faultcode>soap:Server</faultcode><faultstring>Database unavailable</faultstring></soap:Fault>`))
		default:
			fmt.Fprint(w, env(`<crm:GetCustomerResponse xmlns:crm="urn:example:crm"><crm:Customer id="42"><crm:Name>Ada &amp; Co</crm:Name><crm:Tag>vip</crm:Tag><crm:Tag>early</crm:Tag><crm:Note xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/></crm:Customer></crm:GetCustomerResponse>`))
		}
	case "/soap12":
		w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
		env := func(inner string) string {
			return `<?xml version="1.0" encoding="utf-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>` + inner + `</env:Body></env:Envelope>`
		}
		if strings.Contains(body, "<tns:ZIP>00000</tns:ZIP>") {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, env(`<env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>w:InvalidZIP</env:Value></env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">ZIP 00000 is not valid</env:Text></env:Reason></env:Fault>`))
			return
		}
		fmt.Fprint(w, env(`<GetCityWeatherByZIPResponse xmlns="http://ws.cdyne.com/WeatherWS/"><GetCityWeatherByZIPResult><Success>true</Success><ResponseText>City Found</ResponseText><State>NY</State><City>New York</City><WeatherID>14</WeatherID><Description>Cloudy</Description><Temperature>52</Temperature></GetCityWeatherByZIPResult></GetCityWeatherByZIPResponse>`))
	}
}

type soapRig struct {
	srv    *soapServer
	caller *bus.Caller
}

func newSOAPRig(t *testing.T) *soapRig {
	t.Helper()
	ss := &soapServer{}
	hs := httptest.NewServer(ss)
	t.Cleanup(hs.Close)
	src := fmt.Sprintf(`version: 1
upstreams:
  crmsoap:
    kind: soap
    endpoint: %[1]s/soap11
    idempotency_header: Idempotency-Key
    retry: {max_attempts: 3, initial_backoff: 1ms, max_backoff: 5ms}
    soap:
      version: "1.1"
      ws_security: {username: alice, password: "${env:SOAP_PW}", password_type: PasswordDigest}
  weather:
    kind: soap
    endpoint: %[1]s/soap12
    soap:
      wsdl: {file: %[2]s, port: WeatherSoap12}
      ws_security: {username: bob, password: "${env:SOAP_PW}", password_type: PasswordText}
tools:
  - name: get_customer
    description: Fetch one customer.
    upstream: crmsoap
    input_schema: {type: object, properties: {id: {type: string}}, required: [id]}
    soap:
      action: "urn:example:crm#GetCustomer"
      body: '<crm:GetCustomer xmlns:crm="urn:example:crm"><crm:Id>{{.id}}</crm:Id></crm:GetCustomer>'
  - name: weather_by_zip
    description: Weather for a US ZIP code.
    upstream: weather
    soap: {operation: GetCityWeatherByZIP}
`, hs.URL, weatherWSDL(t))
	cat, err := catalog.Parse("soap.yaml", []byte(src), catalog.WithLookupEnv(func(n string) (string, bool) {
		return soapPassword, n == "SOAP_PW"
	}))
	if err != nil {
		t.Fatal(err)
	}
	ns := bustest.Server(t)
	nc, js := bustest.Connect(t, ns)
	// The real retry, quota and circuit layers: they must not retry a
	// sender fault, and must retry a server fault.
	svc, err := New(Options{Catalog: cat, NC: nc, JS: js, Instance: "rest-1", Logger: bustest.Logger(),
		HTTP: upstream.Options{Reliability: upstream.NewReliability(upstream.ReliabilityOptions{})}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = svc.Shutdown(ctx)
	})
	c, err := bus.NewCaller(nc, js, bus.CallerOptions{Instance: "front-1", Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &soapRig{srv: ss, caller: c}
}

func (r *soapRig) call(t *testing.T, up, tool, args string) *toolbusv1.ToolResult {
	t.Helper()
	c := &toolbusv1.ToolCall{Tool: tool, Upstream: up, Kind: "soap", Arguments: []byte(args),
		Deadline: timestamppb.New(time.Now().Add(5 * time.Second)), IdempotencyKey: fmt.Sprintf("key-%d", time.Now().UnixNano())} // results of mutating calls are kept by key
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := r.caller.Call(ctx, bus.CallSubject("soap", up, tool), c)
	if err != nil {
		t.Fatalf("call %s: %v", tool, err)
	}
	return res
}

var (
	nonceRE   = regexp.MustCompile(`<wsse:Nonce EncodingType="[^"]*">([^<]*)</wsse:Nonce>`)
	createdRE = regexp.MustCompile(`<wsu:Created>([^<]*)</wsu:Created>`)
)

// tokenOf returns the nonce and creation time the server received, after
// checking that they are fresh and well-formed.
func tokenOf(t *testing.T, body string) (nonce, created string) {
	t.Helper()
	n, c := nonceRE.FindStringSubmatch(body), createdRE.FindStringSubmatch(body)
	if n == nil || c == nil {
		t.Fatalf("no UsernameToken nonce or creation time in %s", body)
	}
	raw, err := base64.StdEncoding.DecodeString(n[1])
	if err != nil || len(raw) != 16 {
		t.Errorf("nonce %q is not 16 bytes of base64", n[1])
	}
	at, err := time.Parse("2006-01-02T15:04:05.000Z", c[1])
	if err != nil || time.Since(at).Abs() > time.Minute {
		t.Errorf("created %q is not a current UTC time with milliseconds", c[1])
	}
	return n[1], c[1]
}

const wsseHead = `<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" soap:mustUnderstand="%s"><wsse:UsernameToken><wsse:Username>%s</wsse:Username><wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#%s">%s</wsse:Password><wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">%s</wsse:Nonce><wsu:Created>%s</wsu:Created></wsse:UsernameToken></wsse:Security>`

func TestSOAP11TemplateWithPasswordDigest(t *testing.T) {
	rig := newSOAPRig(t)
	res := rig.call(t, "crmsoap", "get_customer", `{"id":"42 & <x>"}`)
	if res.Error != nil {
		t.Fatalf("error: %v", res.Error)
	}
	got := rig.srv.last(t)
	nonce, created := tokenOf(t, got.body)
	raw, _ := base64.StdEncoding.DecodeString(nonce)
	sum := sha1.Sum(append(append(raw, created...), soapPassword...))
	digest := base64.StdEncoding.EncodeToString(sum[:])
	want := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header>` +
		fmt.Sprintf(wsseHead, "1", "alice", "PasswordDigest", digest, nonce, created) +
		`</soap:Header><soap:Body><crm:GetCustomer xmlns:crm="urn:example:crm"><crm:Id>42 &amp; &lt;x&gt;</crm:Id></crm:GetCustomer></soap:Body></soap:Envelope>`
	if got.body != want {
		t.Errorf("envelope:\n got %s\nwant %s", got.body, want)
	}
	if got.contentType != "text/xml; charset=utf-8" || got.action != `"urn:example:crm#GetCustomer"` {
		t.Errorf("Content-Type %q, SOAPAction %q", got.contentType, got.action)
	}
	if strings.Contains(got.body, soapPassword) {
		t.Error("PasswordDigest sent the password itself")
	}
	wantJSON := `{"GetCustomerResponse":{"Customer":{"@id":"42","Name":"Ada & Co","Tag":["vip","early"],"Note":null}}}`
	if string(res.Json) != wantJSON {
		t.Errorf("result:\n got %s\nwant %s", res.Json, wantJSON)
	}
}

func TestSOAP12FromPublicWSDLWithPasswordText(t *testing.T) {
	rig := newSOAPRig(t)
	res := rig.call(t, "weather", "weather_by_zip", `{"ZIP":"10001"}`)
	if res.Error != nil {
		t.Fatalf("error: %v", res.Error)
	}
	got := rig.srv.last(t)
	nonce, created := tokenOf(t, got.body)
	want := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Header>` +
		fmt.Sprintf(wsseHead, "true", "bob", "PasswordText", "s3cret-pässword", nonce, created) +
		`</soap:Header><soap:Body><tns:GetCityWeatherByZIP xmlns:tns="http://ws.cdyne.com/WeatherWS/"><tns:ZIP>10001</tns:ZIP></tns:GetCityWeatherByZIP></soap:Body></soap:Envelope>`
	if got.body != want {
		t.Errorf("envelope:\n got %s\nwant %s", got.body, want)
	}
	if want := `application/soap+xml; charset=utf-8; action="http://ws.cdyne.com/WeatherWS/GetCityWeatherByZIP"`; got.contentType != want || got.action != "" {
		t.Errorf("Content-Type %q (want %q), SOAPAction %q (want none in 1.2)", got.contentType, want, got.action)
	}
	// Typed by the WSDL: Success is a boolean, WeatherID (xsd:short) a number.
	wantJSON := `{"GetCityWeatherByZIPResponse":{"GetCityWeatherByZIPResult":{"Success":true,"ResponseText":"City Found","State":"NY","City":"New York","WeatherID":14,"Description":"Cloudy","Temperature":"52"}}}`
	if string(res.Json) != wantJSON {
		t.Errorf("result:\n got %s\nwant %s", res.Json, wantJSON)
	}
}

func TestSOAPFaults(t *testing.T) {
	rig := newSOAPRig(t)
	tests := []struct {
		name, up, tool, args string
		wantClass            toolbusv1.ErrorClass
		wantRetryable        bool
		wantStatus           int32
		wantAttempts         int
		wantMessage          []string
	}{
		{"1.1 Client fault in a 500 is not retried", "crmsoap", "get_customer", `{"id":"client-fault"}`,
			toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_REJECTED, false, 500, 1,
			[]string{"SOAP fault soap:Client", `"Customer client-fault does not exist"`, "detail: E404", "will not help"}},
		{"1.1 Server fault in a 500 is retried", "crmsoap", "get_customer", `{"id":"server-fault"}`,
			toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_FAILED, true, 500, 3,
			[]string{"SOAP fault soap:Server", `"Database unavailable"`, "retrying later may help"}},
		{"1.2 Sender fault with subcode", "weather", "weather_by_zip", `{"ZIP":"00000"}`,
			toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_REJECTED, false, 400, 1,
			[]string{"SOAP fault env:Sender (w:InvalidZIP)", `"ZIP 00000 is not valid"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := rig.srv.count()
			res := rig.call(t, tt.up, tt.tool, tt.args)
			e := res.GetError()
			if e == nil {
				t.Fatalf("want a fault, got %s", res.Json)
			}
			if e.Code != CodeSOAPFault || e.Class != tt.wantClass || e.Retryable != tt.wantRetryable || e.UpstreamStatus != tt.wantStatus {
				t.Errorf("error %v: want code %s, class %v, retryable %v, status %d", e, CodeSOAPFault, tt.wantClass, tt.wantRetryable, tt.wantStatus)
			}
			for _, w := range tt.wantMessage {
				if !strings.Contains(e.Message, w) {
					t.Errorf("message %q does not contain %q", e.Message, w)
				}
			}
			if n := rig.srv.count() - before; n != tt.wantAttempts {
				t.Errorf("the server saw %d requests, want %d", n, tt.wantAttempts)
			}
			if strings.Contains(e.Message, soapPassword) {
				t.Error("the message reveals the password")
			}
		})
	}
}

func TestSOAPRetryGetsFreshNonce(t *testing.T) {
	rig := newSOAPRig(t)
	before := rig.srv.count()
	rig.call(t, "crmsoap", "get_customer", `{"id":"server-fault"}`)
	rig.srv.mu.Lock()
	reqs := append([]soapRequest(nil), rig.srv.reqs[before:]...)
	rig.srv.mu.Unlock()
	seen := map[string]bool{}
	for _, r := range reqs {
		n, _ := tokenOf(t, r.body)
		if seen[n] {
			t.Errorf("nonce %s was sent twice: a server's replay cache would refuse the retry", n)
		}
		seen[n] = true
	}
	if len(reqs) != 3 {
		t.Errorf("%d attempts, want 3", len(reqs))
	}
}
