package main

import (
	"github.com/toolbus/toolbus/catalog"
)

// Least privilege for secrets: a serve process reads only the secret
// references of the catalog that its services use (catalog.SecretsFor);
// the others are checked but never read, so a pod needs only its own
// Secrets mounted (docs/security.md, "Least privilege").

// serveSecretGroups are the secret groups a serve process resolves: those
// of its services, plus the MCP-side auth secrets when the operator
// console is asked for explicitly (it authenticates its users with them).
// In auto mode a console without them stays off (console.go).
func serveSecretGroups(cfg serveConfig) catalog.SecretGroups {
	g := catalog.SecretsFor(cfg.services...)
	if cfg.console.enabled != nil && *cfg.console.enabled || cfg.console.demo {
		g |= catalog.SecretsServerAuth
	}
	return g
}

// catalogLoadOptions are the options serve loads its catalog with; hot
// reload uses the groups of the catalog it started with
// (catalog.Catalog.SecretGroups, reload.go).
func catalogLoadOptions(cfg serveConfig) []catalog.Option {
	return []catalog.Option{catalog.WithSecrets(serveSecretGroups(cfg))}
}

// serverAuthResolved reports whether the catalog's MCP-side auth secrets
// (introspection client credentials) were read.
func serverAuthResolved(cat *catalog.Catalog) bool {
	for _, s := range cat.Auth.Secrets() {
		if !s.Resolved() {
			return false
		}
	}
	return true
}
