package crmgraphql

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
	"time"

	graphql "github.com/graph-gophers/graphql-go"
)

const (
	defaultPageSize = 10
	maxPageSize     = 50
)

// resolver is the root of Query, Mutation and Subscription.
type resolver struct{ db *store }

func (r *resolver) Customer(args struct{ ID graphql.ID }) *customerResolver {
	c := r.db.customer(string(args.ID))
	if c == nil {
		return nil
	}
	return &customerResolver{r.db, c}
}

func (r *resolver) Customers(args struct {
	First  *int32
	After  *string
	Filter *customerFilter
}) (*connectionResolver, error) {
	first := defaultPageSize
	if args.First != nil {
		if *args.First < 0 || *args.First > maxPageSize {
			return nil, fmt.Errorf("first must be between 0 and %d", maxPageSize)
		}
		first = int(*args.First)
	}
	after := 0
	if args.After != nil {
		n, err := parseCursor(*args.After)
		if err != nil {
			return nil, err
		}
		after = n
	}
	r.db.mu.Lock()
	var matching []*customer
	for _, c := range r.db.customers {
		if args.Filter.match(c) {
			matching = append(matching, c)
		}
	}
	r.db.mu.Unlock()
	var page []*customer
	for _, c := range matching {
		if c.seq > after {
			page = append(page, c)
		}
	}
	hasNext := len(page) > first
	if hasNext {
		page = page[:first]
	}
	return &connectionResolver{db: r.db, page: page, hasNext: hasNext, hasPrev: after > 0, total: len(matching)}, nil
}

func (r *resolver) Orders(args struct {
	Status *string
	Limit  int32
}) []*orderResolver {
	os := r.db.ordersOf("", args.Status)
	if args.Limit >= 0 && int(args.Limit) < len(os) {
		os = os[:args.Limit]
	}
	return orderResolvers(r.db, os)
}

func (r *resolver) Search(args struct{ Text string }) []*searchResultResolver {
	text := strings.ToLower(args.Text)
	var out []*searchResultResolver
	r.db.mu.Lock()
	customers := append([]*customer(nil), r.db.customers...)
	orders := append([]*order(nil), r.db.orders...)
	r.db.mu.Unlock()
	for _, c := range customers {
		if strings.Contains(strings.ToLower(c.name), text) {
			out = append(out, &searchResultResolver{customer: &customerResolver{r.db, c}})
		}
	}
	for _, o := range orders {
		for _, l := range o.lines {
			if strings.Contains(strings.ToLower(l.sku), text) {
				out = append(out, &searchResultResolver{order: &orderResolver{r.db, o}})
				break
			}
		}
	}
	return out
}

func (r *resolver) Node(args struct{ ID graphql.ID }) *nodeResolver {
	if c := r.db.customer(string(args.ID)); c != nil {
		return &nodeResolver{customer: &customerResolver{r.db, c}}
	}
	if o := r.db.order(string(args.ID)); o != nil {
		return &nodeResolver{order: &orderResolver{r.db, o}}
	}
	return nil
}

type addressInput struct {
	Street     string
	City       string
	Country    string
	PostalCode *string
}

type customerInput struct {
	Name     string
	Email    string
	Tier     string // has a default, so never absent
	Tags     *[]string
	Address  *addressInput
	SignupAt *DateTime
}

func (r *resolver) CreateCustomer(args struct{ Input customerInput }) *createCustomerPayload {
	in := args.Input
	var problems []*userError
	if strings.TrimSpace(in.Name) == "" {
		problems = append(problems, &userError{field: []string{"input", "name"}, message: "name must not be empty"})
	}
	if !validEmail(in.Email) {
		problems = append(problems, &userError{field: []string{"input", "email"},
			message: fmt.Sprintf("%q is not a valid e-mail address", in.Email)})
	}
	r.db.mu.Lock()
	defer r.db.mu.Unlock()
	for _, c := range r.db.customers {
		if strings.EqualFold(c.email, in.Email) {
			problems = append(problems, &userError{field: []string{"input", "email"},
				message: fmt.Sprintf("a customer with e-mail %s already exists (%s)", in.Email, c.id)})
		}
	}
	if len(problems) > 0 {
		return &createCustomerPayload{userErrors: problems}
	}
	c := &customer{
		seq:       len(r.db.customers) + 1,
		name:      in.Name,
		email:     in.Email,
		tier:      "FREE",
		tags:      []string{},
		createdAt: time.Now().UTC().Truncate(time.Second),
	}
	c.id = fmt.Sprintf("c%d", c.seq)
	if in.Tier != "" {
		c.tier = in.Tier
	}
	if in.Tags != nil {
		c.tags = append(c.tags, *in.Tags...)
	}
	if in.SignupAt != nil {
		c.createdAt = in.SignupAt.Time
	}
	if a := in.Address; a != nil {
		c.address = &address{a.Street, a.City, a.Country, a.PostalCode}
	}
	r.db.customers = append(r.db.customers, c)
	return &createCustomerPayload{customer: &customerResolver{r.db, c}}
}

func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && strings.Contains(s[at+1:], ".")
}

type orderLineInput struct {
	Sku       string
	Quantity  int32
	UnitPrice float64
}

type orderInput struct {
	CustomerID graphql.ID
	Lines      []orderLineInput
	Note       *string
}

func (r *resolver) PlaceOrder(args struct{ Input orderInput }) *placeOrderPayload {
	in := args.Input
	var problems []*userError
	if r.db.customer(string(in.CustomerID)) == nil {
		problems = append(problems, &userError{field: []string{"input", "customerId"},
			message: fmt.Sprintf("no customer with id %s", in.CustomerID)})
	}
	if len(in.Lines) == 0 {
		problems = append(problems, &userError{field: []string{"input", "lines"}, message: "an order needs at least one line"})
	}
	for i, l := range in.Lines {
		if l.Quantity <= 0 {
			problems = append(problems, &userError{field: []string{"input", "lines", fmt.Sprint(i), "quantity"},
				message: "quantity must be positive"})
		}
	}
	if len(problems) > 0 {
		return &placeOrderPayload{userErrors: problems}
	}
	o := &order{customerID: string(in.CustomerID), status: "PENDING", placedAt: time.Now().UTC().Truncate(time.Second)}
	for _, l := range in.Lines {
		o.lines = append(o.lines, orderLine{l.Sku, l.Quantity, l.UnitPrice})
	}
	r.db.mu.Lock()
	o.id = fmt.Sprintf("o%d", len(r.db.orders)+1)
	r.db.orders = append(r.db.orders, o)
	r.db.mu.Unlock()
	return &placeOrderPayload{order: &orderResolver{r.db, o}}
}

// OrderPlaced exists because the schema declares a subscription; the demo
// has no event source, so the stream ends at once.
func (r *resolver) OrderPlaced(ctx context.Context) <-chan *orderResolver {
	c := make(chan *orderResolver)
	close(c)
	return c
}

type customerResolver struct {
	db *store
	c  *customer
}

func (r *customerResolver) ID() graphql.ID      { return graphql.ID(r.c.id) }
func (r *customerResolver) Name() string        { return r.c.name }
func (r *customerResolver) Email() string       { return r.c.email }
func (r *customerResolver) Tier() string        { return r.c.tier }
func (r *customerResolver) Tags() []string      { return r.c.tags }
func (r *customerResolver) CreatedAt() DateTime { return DateTime{r.c.createdAt} }

func (r *customerResolver) Address() *addressResolver {
	if r.c.address == nil {
		return nil
	}
	return &addressResolver{r.c.address}
}

func (r *customerResolver) Orders(args struct{ Status *string }) []*orderResolver {
	return orderResolvers(r.db, r.db.ordersOf(r.c.id, args.Status))
}

// Notes fails for c3 on purpose: a field error inside otherwise good data.
func (r *customerResolver) Notes() (*string, error) {
	if r.c.id == "c3" {
		return nil, fmt.Errorf("not authorized to read the notes of customer %s", r.c.id)
	}
	if r.c.notes == "" {
		return nil, nil
	}
	return &r.c.notes, nil
}

type addressResolver struct{ a *address }

func (r *addressResolver) Street() string      { return r.a.street }
func (r *addressResolver) City() string        { return r.a.city }
func (r *addressResolver) Country() string     { return r.a.country }
func (r *addressResolver) PostalCode() *string { return r.a.postalCode }

type orderResolver struct {
	db *store
	o  *order
}

func orderResolvers(db *store, os []*order) []*orderResolver {
	out := make([]*orderResolver, len(os))
	for i, o := range os {
		out[i] = &orderResolver{db, o}
	}
	return out
}

func (r *orderResolver) ID() graphql.ID     { return graphql.ID(r.o.id) }
func (r *orderResolver) Status() string     { return r.o.status }
func (r *orderResolver) PlacedAt() DateTime { return DateTime{r.o.placedAt} }

func (r *orderResolver) Total() float64 {
	var t float64
	for _, l := range r.o.lines {
		t += float64(l.quantity) * l.unitPrice
	}
	return t
}

func (r *orderResolver) Quantity() int32 {
	var q int32
	for _, l := range r.o.lines {
		q += l.quantity
	}
	return q
}

func (r *orderResolver) Customer() (*customerResolver, error) {
	c := r.db.customer(r.o.customerID)
	if c == nil {
		return nil, fmt.Errorf("customer %s of order %s is gone", r.o.customerID, r.o.id)
	}
	return &customerResolver{r.db, c}, nil
}

func (r *orderResolver) Lines() []*orderLineResolver {
	out := make([]*orderLineResolver, len(r.o.lines))
	for i := range r.o.lines {
		out[i] = &orderLineResolver{&r.o.lines[i]}
	}
	return out
}

type orderLineResolver struct{ l *orderLine }

func (r *orderLineResolver) Sku() string        { return r.l.sku }
func (r *orderLineResolver) Quantity() int32    { return r.l.quantity }
func (r *orderLineResolver) UnitPrice() float64 { return r.l.unitPrice }

type connectionResolver struct {
	db      *store
	page    []*customer
	hasNext bool
	hasPrev bool
	total   int
}

func (r *connectionResolver) Edges() []*edgeResolver {
	out := make([]*edgeResolver, len(r.page))
	for i, c := range r.page {
		out[i] = &edgeResolver{&customerResolver{r.db, c}}
	}
	return out
}

func (r *connectionResolver) Nodes() []*customerResolver {
	out := make([]*customerResolver, len(r.page))
	for i, c := range r.page {
		out[i] = &customerResolver{r.db, c}
	}
	return out
}

func (r *connectionResolver) TotalCount() int32 { return int32(r.total) }

func (r *connectionResolver) PageInfo() *pageInfoResolver {
	p := &pageInfoResolver{hasNext: r.hasNext, hasPrev: r.hasPrev}
	if len(r.page) > 0 {
		start, end := cursor(r.page[0]), cursor(r.page[len(r.page)-1])
		p.start, p.end = &start, &end
	}
	return p
}

type edgeResolver struct{ c *customerResolver }

func (r *edgeResolver) Cursor() string          { return cursor(r.c.c) }
func (r *edgeResolver) Node() *customerResolver { return r.c }

type pageInfoResolver struct {
	hasNext, hasPrev bool
	start, end       *string
}

func (r *pageInfoResolver) HasNextPage() bool     { return r.hasNext }
func (r *pageInfoResolver) HasPreviousPage() bool { return r.hasPrev }
func (r *pageInfoResolver) StartCursor() *string  { return r.start }
func (r *pageInfoResolver) EndCursor() *string    { return r.end }

type searchResultResolver struct {
	customer *customerResolver
	order    *orderResolver
}

func (r *searchResultResolver) ToCustomer() (*customerResolver, bool) {
	return r.customer, r.customer != nil
}
func (r *searchResultResolver) ToOrder() (*orderResolver, bool) { return r.order, r.order != nil }

type nodeResolver struct {
	customer *customerResolver
	order    *orderResolver
}

func (r *nodeResolver) ID() graphql.ID {
	if r.customer != nil {
		return r.customer.ID()
	}
	return r.order.ID()
}

func (r *nodeResolver) ToCustomer() (*customerResolver, bool) {
	return r.customer, r.customer != nil
}
func (r *nodeResolver) ToOrder() (*orderResolver, bool) { return r.order, r.order != nil }

type userError struct {
	field   []string
	message string
}

func (r *userError) Field() *[]string { return &r.field }
func (r *userError) Message() string  { return r.message }

type createCustomerPayload struct {
	customer   *customerResolver
	userErrors []*userError
}

func (r *createCustomerPayload) Customer() *customerResolver { return r.customer }
func (r *createCustomerPayload) UserErrors() []*userError    { return nonNil(r.userErrors) }

type placeOrderPayload struct {
	order      *orderResolver
	userErrors []*userError
}

func (r *placeOrderPayload) Order() *orderResolver    { return r.order }
func (r *placeOrderPayload) UserErrors() []*userError { return nonNil(r.userErrors) }

// nonNil keeps a non-null list from reading as null.
func nonNil(l []*userError) []*userError {
	if l == nil {
		return []*userError{}
	}
	return l
}
