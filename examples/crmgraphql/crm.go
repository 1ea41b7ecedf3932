// Package crmgraphql is a small in-memory CRM served over GraphQL: a real
// upstream for demos and for tests of the GraphQL tools.
//
// It provides NewHandler, an http.Handler answering POSTed GraphQL requests
// for the schema in Schema: customers and orders, an order status enum, a
// Relay connection with opaque cursors, a createCustomer mutation that reports
// a bad e-mail in userErrors, and a Customer.notes field that fails for
// customer c3 so that partial-data responses can be tested.
//
// It is an example, not a product: data lives in memory and is lost when the
// handler goes; it must not be used to hold anything real.
package crmgraphql

import (
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	graphql "github.com/graph-gophers/graphql-go"
	"github.com/graph-gophers/graphql-go/relay"
)

// Schema is the GraphQL schema NewHandler serves.
//
//go:embed schema.graphql
var Schema string

// NewHandler returns a handler over a fresh copy of the sample data: each
// call starts from the same state, so tests do not see each other's writes.
func NewHandler() http.Handler {
	return newHandler(graphql.UseStringDescriptions())
}

// NewHandlerWithoutIntrospection is NewHandler for a server that, like many
// in production, refuses introspection: it answers __schema queries with no
// __schema.
func NewHandlerWithoutIntrospection() http.Handler {
	return newHandler(graphql.UseStringDescriptions(),
		graphql.RestrictIntrospection(func(context.Context) bool { return false }))
}

func newHandler(opts ...graphql.SchemaOpt) http.Handler {
	s := graphql.MustParseSchema(Schema, &resolver{db: newStore()}, opts...)
	gql := &relay.Handler{Schema: s}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST a GraphQL request as JSON", http.StatusMethodNotAllowed)
			return
		}
		gql.ServeHTTP(w, r)
	})
}

// DateTime is the DateTime scalar: RFC 3339 text on the wire.
type DateTime struct{ time.Time }

// ImplementsGraphQLType binds DateTime to the schema's DateTime scalar.
func (DateTime) ImplementsGraphQLType(name string) bool { return name == "DateTime" }

// UnmarshalGraphQL reads a DateTime argument.
func (t *DateTime) UnmarshalGraphQL(input any) error {
	s, ok := input.(string)
	if !ok {
		return fmt.Errorf("DateTime must be an RFC 3339 string, not %T", input)
	}
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fmt.Errorf("DateTime must be an RFC 3339 string: %w", err)
	}
	t.Time = v
	return nil
}

// MarshalJSON writes a DateTime result.
func (t DateTime) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.UTC().Format(time.RFC3339))
}

type address struct {
	street, city, country string
	postalCode            *string
}

type customer struct {
	seq       int // creation order; cursors point at it
	id        string
	name      string
	email     string
	tier      string
	tags      []string
	createdAt time.Time
	address   *address
	notes     string
}

type orderLine struct {
	sku       string
	quantity  int32
	unitPrice float64
}

type order struct {
	id         string
	customerID string
	status     string
	placedAt   time.Time
	lines      []orderLine
}

// store holds the data. Records are never changed once added, so resolvers
// may keep pointers to them; the lists are guarded by mu.
type store struct {
	mu        sync.Mutex
	customers []*customer
	orders    []*order
}

func newStore() *store {
	day := func(d int) time.Time { return time.Date(2024, 1, d, 9, 0, 0, 0, time.UTC) }
	pc := func(s string) *string { return &s }
	db := &store{}
	for i, c := range []customer{
		{id: "c1", name: "Ada Lovelace", email: "ada@example.com", tier: "ENTERPRISE", tags: []string{"vip", "eu"},
			address: &address{"12 St James's Square", "London", "GB", pc("SW1Y 4JH")}, notes: "Prefers e-mail."},
		{id: "c2", name: "Grace Hopper", email: "grace@example.com", tier: "PRO", tags: []string{"navy"},
			address: &address{"1 Navy Way", "Arlington", "US", nil}, notes: "Ask about COBOL."},
		{id: "c3", name: "Alan Turing", email: "alan@example.com", tier: "FREE", tags: []string{}, notes: "restricted"},
		{id: "c4", name: "Katherine Johnson", email: "katherine@example.com", tier: "PRO", tags: []string{"nasa"}},
		{id: "c5", name: "Edsger Dijkstra", email: "edsger@example.com", tier: "FREE", tags: []string{"eu"}},
	} {
		c.seq = i + 1
		c.createdAt = day(i + 1)
		db.customers = append(db.customers, &c)
	}
	db.orders = []*order{
		{id: "o1", customerID: "c1", status: "PAID", placedAt: day(10), lines: []orderLine{{"BOOK-1", 2, 12.5}}},
		{id: "o2", customerID: "c1", status: "SHIPPED", placedAt: day(11), lines: []orderLine{{"PEN-7", 10, 1.2}, {"BOOK-2", 1, 30}}},
		{id: "o3", customerID: "c2", status: "PENDING", placedAt: day(12), lines: []orderLine{{"LAMP-3", 1, 45}}},
		{id: "o4", customerID: "c3", status: "CANCELLED", placedAt: day(13), lines: []orderLine{{"BOOK-1", 1, 12.5}}},
		{id: "o5", customerID: "c4", status: "PAID", placedAt: day(14), lines: []orderLine{{"DESK-9", 1, 320}}},
	}
	return db
}

func (db *store) customer(id string) *customer {
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, c := range db.customers {
		if c.id == id {
			return c
		}
	}
	return nil
}

func (db *store) order(id string) *order {
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, o := range db.orders {
		if o.id == id {
			return o
		}
	}
	return nil
}

// ordersOf lists orders newest first, of one customer when customerID is set.
func (db *store) ordersOf(customerID string, status *string) []*order {
	db.mu.Lock()
	defer db.mu.Unlock()
	var out []*order
	for i := len(db.orders) - 1; i >= 0; i-- {
		o := db.orders[i]
		if (customerID == "" || o.customerID == customerID) && (status == nil || o.status == *status) {
			out = append(out, o)
		}
	}
	return out
}

// cursor is opaque to clients: the base64 of the customer's creation number.
func cursor(c *customer) string {
	return base64.RawURLEncoding.EncodeToString([]byte("customer:" + strconv.Itoa(c.seq)))
}

func parseCursor(s string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, fmt.Errorf("invalid cursor %q", s)
	}
	n, err := strconv.Atoi(strings.TrimPrefix(string(b), "customer:"))
	if err != nil || !strings.HasPrefix(string(b), "customer:") {
		return 0, fmt.Errorf("invalid cursor %q", s)
	}
	return n, nil
}

type customerFilter struct {
	NameContains *string
	TierIn       *[]string
	CreatedAfter *DateTime
	And          *[]*customerFilter
	Or           *[]*customerFilter
	Not          *customerFilter
}

func (f *customerFilter) match(c *customer) bool {
	if f == nil {
		return true
	}
	if f.NameContains != nil && !strings.Contains(strings.ToLower(c.name), strings.ToLower(*f.NameContains)) {
		return false
	}
	if f.TierIn != nil {
		found := false
		for _, t := range *f.TierIn {
			found = found || t == c.tier
		}
		if !found {
			return false
		}
	}
	if f.CreatedAfter != nil && !c.createdAt.After(f.CreatedAfter.Time) {
		return false
	}
	if f.And != nil {
		for _, g := range *f.And {
			if !g.match(c) {
				return false
			}
		}
	}
	if f.Or != nil && len(*f.Or) > 0 {
		matched := false
		for _, g := range *f.Or {
			matched = matched || g.match(c)
		}
		if !matched {
			return false
		}
	}
	return f.Not == nil || !f.Not.match(c)
}
