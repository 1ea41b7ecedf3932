package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/toolbus/toolbus/projection"
)

type projectionRow struct {
	Name    string
	Sources []string
	Events  []string
	History int
	Bucket  string
}

type stateView struct{ Projections []projectionRow }

func (c *Console) statePage(w http.ResponseWriter, r *http.Request) {
	v := &stateView{}
	for name, p := range c.catalog().Projections {
		row := projectionRow{Name: name, Events: p.Events, History: p.History, Bucket: projection.Bucket(name)}
		for _, s := range p.Sources {
			row.Sources = append(row.Sources, s.Name)
		}
		v.Projections = append(v.Projections, row)
	}
	slices.SortFunc(v.Projections, func(a, b projectionRow) int { return strings.Compare(a.Name, b.Name) })
	c.render(w, r, http.StatusOK, "state", v)
}

type projectionView struct {
	Name           string
	Prefix         string
	IncludeDeleted bool
	Items          []*projection.Entity
	Next           string
	Error          string
}

func (c *Console) projectionPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("projection")
	if _, ok := c.catalog().Projections[name]; !ok {
		c.refuse(w, r, http.StatusNotFound, "No projection "+name+" in the catalog.")
		return
	}
	q := r.URL.Query()
	v := &projectionView{Name: name, Prefix: q.Get("prefix"), IncludeDeleted: q.Get("deleted") == "on"}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	pg, err := c.reader.List(ctx, name, projection.Query{Prefix: v.Prefix, Cursor: q.Get("cursor"), IncludeDeleted: v.IncludeDeleted})
	switch {
	case errors.Is(err, projection.ErrBadCursor):
		c.refuse(w, r, http.StatusBadRequest, "Invalid page cursor.")
		return
	case err != nil:
		v.Error = "The projection could not be read: " + err.Error()
	default:
		v.Items, v.Next = pg.Items, pg.NextCursor
	}
	c.render(w, r, http.StatusOK, "projection", v)
}

type entityView struct {
	Projection string
	Entity     *projection.Entity
	Value      string
	// History is newest first.
	History []projection.HistoryEntry
}

func (c *Console) entityPage(w http.ResponseWriter, r *http.Request) {
	name, key := r.PathValue("projection"), r.URL.Query().Get("key")
	if _, ok := c.catalog().Projections[name]; !ok {
		c.refuse(w, r, http.StatusNotFound, "No projection "+name+" in the catalog.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	e, err := c.reader.GetAny(ctx, name, key)
	switch {
	case errors.Is(err, projection.ErrNotFound):
		c.refuse(w, r, http.StatusNotFound, "No entity with this key in "+name+".")
		return
	case err != nil:
		c.refuse(w, r, http.StatusBadGateway, "The entity could not be read: "+err.Error())
		return
	}
	v := &entityView{Projection: name, Entity: e}
	if e.Value != nil {
		raw, _ := json.Marshal(e.Value)
		v.Value = redactJSON(raw)
	}
	v.History = slices.Clone(e.History)
	slices.Reverse(v.History)
	c.render(w, r, http.StatusOK, "entity", v)
}
