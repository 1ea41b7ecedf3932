package bus

import (
	"encoding/json"

	"github.com/nats-io/nats.go"
)

// ProgressSuffix is appended to a call's reply subject to name the core
// NATS subject on which a worker reports the progress of a long call (one
// small JSON Progress per step, such as a page fetched). mcp-front
// forwards it as MCP progress notifications when the client asked for
// them; nobody listening costs nothing.
const ProgressSuffix = ".progress"

// Progress is one progress report.
type Progress struct {
	Progress float64 `json:"progress"`
	Total    float64 `json:"total,omitempty"`
	Message  string  `json:"message,omitempty"`
}

// ProgressSubject is where progress of the call answered on reply goes.
func ProgressSubject(reply string) string { return reply + ProgressSuffix }

// PublishProgress reports progress of the call answered on reply. A lost
// report only costs a notification, so the error is for logs at most.
func PublishProgress(nc *nats.Conn, reply string, p Progress) error {
	if reply == "" {
		return nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return nc.Publish(ProgressSubject(reply), b)
}
