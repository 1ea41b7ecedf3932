// Package gqlop turns GraphQL operations into tool definitions and reads their
// answers back.
//
// It provides: loading a schema from SDL or by introspecting an endpoint
// (LoadSDL, Introspect, Schema.SDL for caching); parsing one operation per tool
// and validating it against the schema with file:line:column errors
// (ParseOperation); the JSON Schema of the operation's variables and of its
// data (Operation.InputSchema, Operation.OutputSchema); Relay pagination
// checks and helpers (Operation.CheckConnection, NextCursor, MergePages); and
// the classification of GraphQL responses and mutation payload errors
// (ParseResponse, PayloadErrors).
//
// It takes plain inputs and returns plain outputs. It must not depend on the
// bus, MCP or the catalog: the catalog loader and the graphql-worker call it,
// not the other way round. Apart from Introspect it does no I/O.
package gqlop
