// Package cluster holds the loopback cluster test: three real nats-server
// processes configured from deploy/k8s/base/nats/nats.conf form a JetStream
// cluster as the StatefulSet does, the toolbus binary runs as mcp-front and
// rest-worker processes with R3 streams, and one NATS server is killed and
// restarted during a steady stream of MCP tool calls.
//
// It is a module of its own, outside go.work, so that it never slows the
// unit tests; run it with `make cluster-test` (deploy/Makefile.inc).
package cluster
