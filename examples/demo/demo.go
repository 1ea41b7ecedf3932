// Package demo provides the demo catalog that `toolbus demo` and `make run`
// serve over the demo CRM upstreams: REST (examples/crm) and GraphQL
// (examples/crmgraphql). It holds data only.
package demo

import "embed"

// Catalog is the demo catalog (catalog.yaml).
//
//go:embed catalog.yaml
var Catalog []byte

// Files holds the files the demo catalog references (the GraphQL schema),
// rooted at the catalog's directory: pass it to catalog.WithFS.
//
//go:embed catalog.yaml crm.graphql
var Files embed.FS

// CatalogFile names the demo catalog in messages.
const CatalogFile = "examples/demo/catalog.yaml"

// UpstreamAddr is where the demo catalog expects the CRM upstream.
const UpstreamAddr = "127.0.0.1:8081"

// GraphQLAddr is where the demo catalog expects the CRM's GraphQL endpoint
// (served at /graphql).
const GraphQLAddr = "127.0.0.1:8082"
