package crm

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// Customer statuses.
const (
	StatusActive  = "active"
	StatusChurned = "churned"
)

// Customer is a CRM customer as the API returns it.
type Customer struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Status    string    `json:"status"`
	Company   string    `json:"company,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Order is an order placed by a customer. Amount is in minor units (cents).
type Order struct {
	ID          int64             `json:"id"`
	CustomerID  int64             `json:"customer_id"`
	Amount      int64             `json:"amount"`
	Currency    string            `json:"currency"`
	Status      string            `json:"status"`
	Description string            `json:"description,omitempty"`
	Metadata    map[string]string `json:"metadata"`
	CreatedAt   time.Time         `json:"created_at"`
}

// store keeps customers and orders in memory. Ids are assigned in increasing
// order, so the id slices stay sorted and keyset pagination is stable while
// customers are added or deleted.
type store struct {
	mu          sync.RWMutex
	now         func() time.Time
	customers   map[int64]*Customer
	customerIDs []int64
	orders      map[int64]*Order
	orderIDs    []int64
	byCustomer  map[int64][]int64
	nextCust    int64
	nextOrder   int64
}

var (
	firstNames = []string{"Ada", "Grace", "Alan", "Barbara", "Edsger", "Frances", "Donald", "Margaret", "Ken", "Radia", "Dennis", "Hedy", "Linus", "Katherine", "John", "Sophie"}
	lastNames  = []string{"Lovelace", "Hopper", "Turing", "Liskov", "Dijkstra", "Allen", "Knuth", "Hamilton", "Thompson", "Perlman", "Ritchie", "Lamarr", "Torvalds", "Johnson", "Backus", "Wilson"}
	companies  = []string{"Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Tyrell", ""}
	orderState = []string{"pending", "paid", "shipped", "cancelled"}
	currencies = []string{"usd", "eur", "gbp"}
	products   = []string{"Starter plan", "Pro plan", "Support hours", "Onboarding", "Hardware kit"}
)

// seedEpoch is the creation time of the first seeded record; fixed so that
// seeded data is identical on every start.
var seedEpoch = time.Date(2024, 1, 1, 9, 0, 0, 0, time.UTC)

func newStore(customers, orders int, seed uint64, now func() time.Time) *store {
	s := &store{
		now:        now,
		customers:  make(map[int64]*Customer, customers),
		orders:     make(map[int64]*Order, orders),
		byCustomer: make(map[int64][]int64, customers),
		nextCust:   1,
		nextOrder:  1,
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range customers {
		first := firstNames[rng.IntN(len(firstNames))]
		last := lastNames[rng.IntN(len(lastNames))]
		status := StatusActive
		if rng.IntN(5) == 0 {
			status = StatusChurned
		}
		at := seedEpoch.Add(time.Duration(i) * time.Hour)
		s.insertCustomer(&Customer{
			Name:      first + " " + last,
			Email:     strings.ToLower(fmt.Sprintf("%s.%s%d@example.com", first, last, s.nextCust)),
			Status:    status,
			Company:   companies[rng.IntN(len(companies))],
			CreatedAt: at,
			UpdatedAt: at,
		})
	}
	for i := range orders {
		if customers == 0 {
			break
		}
		cust := s.customerIDs[rng.IntN(len(s.customerIDs))]
		s.insertOrder(&Order{
			CustomerID:  cust,
			Amount:      int64(500 + rng.IntN(200)*100),
			Currency:    currencies[rng.IntN(len(currencies))],
			Status:      orderState[rng.IntN(len(orderState))],
			Description: products[rng.IntN(len(products))],
			Metadata:    map[string]string{"source": "seed"},
			CreatedAt:   seedEpoch.Add(time.Duration(customers+i) * time.Hour),
		})
	}
	return s
}

// insertCustomer assigns an id; the caller holds the write lock (or owns s).
func (s *store) insertCustomer(c *Customer) Customer {
	c.ID = s.nextCust
	s.nextCust++
	s.customers[c.ID] = c
	s.customerIDs = append(s.customerIDs, c.ID)
	return *c
}

func (s *store) insertOrder(o *Order) Order {
	o.ID = s.nextOrder
	s.nextOrder++
	s.orders[o.ID] = o
	s.orderIDs = append(s.orderIDs, o.ID)
	s.byCustomer[o.CustomerID] = append(s.byCustomer[o.CustomerID], o.ID)
	return cloneOrder(o)
}

func cloneOrder(o *Order) Order {
	c := *o
	c.Metadata = make(map[string]string, len(o.Metadata))
	for k, v := range o.Metadata {
		c.Metadata[k] = v
	}
	return c
}

// customerFilter selects customers; empty fields match everything.
type customerFilter struct {
	email  string
	status string
}

func (f customerFilter) match(c *Customer) bool {
	return (f.email == "" || strings.EqualFold(f.email, c.Email)) &&
		(f.status == "" || f.status == c.Status)
}

// listCustomersAfter returns up to limit customers with id > after that
// match f, and whether more exist.
func (s *store) listCustomersAfter(f customerFilter, after int64, limit int) ([]Customer, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	start, _ := slices.BinarySearch(s.customerIDs, after+1)
	out := make([]Customer, 0, min(limit, 100))
	for _, id := range s.customerIDs[start:] {
		c := s.customers[id]
		if !f.match(c) {
			continue
		}
		if len(out) == limit {
			return out, true
		}
		out = append(out, *c)
	}
	return out, false
}

// listCustomersOffset returns the page [offset, offset+limit) of the
// customers matching f, and the total number matching.
func (s *store) listCustomersOffset(f customerFilter, offset, limit int) ([]Customer, int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Customer, 0, min(limit, 100))
	total := 0
	for _, id := range s.customerIDs {
		c := s.customers[id]
		if !f.match(c) {
			continue
		}
		if total >= offset && len(out) < limit {
			out = append(out, *c)
		}
		total++
	}
	return out, total
}

func (s *store) allCustomers() []Customer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Customer, 0, len(s.customerIDs))
	for _, id := range s.customerIDs {
		out = append(out, *s.customers[id])
	}
	return out
}

func (s *store) customer(id int64) (Customer, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.customers[id]
	if !ok {
		return Customer{}, false
	}
	return *c, true
}

func (s *store) createCustomer(c Customer) Customer {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	c.CreatedAt, c.UpdatedAt = now, now
	return s.insertCustomer(&c)
}

// customerPatch holds the fields a PATCH may change; nil means unchanged.
type customerPatch struct {
	Name    *string `json:"name"`
	Email   *string `json:"email"`
	Status  *string `json:"status"`
	Company *string `json:"company"`
}

func (s *store) updateCustomer(id int64, p customerPatch) (Customer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.customers[id]
	if !ok {
		return Customer{}, false
	}
	if p.Name != nil {
		c.Name = *p.Name
	}
	if p.Email != nil {
		c.Email = *p.Email
	}
	if p.Status != nil {
		c.Status = *p.Status
	}
	if p.Company != nil {
		c.Company = *p.Company
	}
	c.UpdatedAt = s.now().UTC()
	return *c, true
}

func (s *store) deleteCustomer(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.customers[id]; !ok {
		return false
	}
	delete(s.customers, id)
	if i, found := slices.BinarySearch(s.customerIDs, id); found {
		s.customerIDs = slices.Delete(s.customerIDs, i, i+1)
	}
	return true
}

// customerOrders returns up to limit orders of customer id with order id >
// after, whether more exist, and whether the customer exists.
func (s *store) customerOrders(id, after int64, limit int) ([]Order, bool, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.customers[id]; !ok {
		return nil, false, false
	}
	ids := s.byCustomer[id]
	start, _ := slices.BinarySearch(ids, after+1)
	out := make([]Order, 0, min(limit, len(ids)-start))
	for _, oid := range ids[start:] {
		if len(out) == limit {
			return out, true, true
		}
		out = append(out, cloneOrder(s.orders[oid]))
	}
	return out, false, true
}

func (s *store) order(id int64) (Order, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o, ok := s.orders[id]
	if !ok {
		return Order{}, false
	}
	return cloneOrder(o), true
}

// createOrder stores o unless its customer is unknown.
func (s *store) createOrder(o Order) (Order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.customers[o.CustomerID]; !ok {
		return Order{}, false
	}
	o.CreatedAt = s.now().UTC()
	return s.insertOrder(&o), true
}
