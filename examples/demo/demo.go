// Package demo provides the demo catalog that `toolbus demo` and `make run`
// serve over the demo CRM upstream (examples/crm). It holds data only.
package demo

import _ "embed"

// Catalog is the demo catalog (catalog.yaml).
//
//go:embed catalog.yaml
var Catalog []byte

// CatalogFile names the demo catalog in messages.
const CatalogFile = "examples/demo/catalog.yaml"

// UpstreamAddr is where the demo catalog expects the CRM upstream.
const UpstreamAddr = "127.0.0.1:8081"
