// Package proc starts the processes a benchmark measures and reads their CPU
// time and peak memory from /proc (Linux only). It must not measure anything
// itself: callers decide when to snapshot.
package proc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// It is 100 on every Linux architecture Go supports.
const clockTicks = 100

// CPU returns the user plus system CPU time that process pid has used so
// far (pid 0 means this process). Children's time is not included.
func CPU(pid int) (time.Duration, error) {
	p := "/proc/self/stat"
	if pid != 0 {
		p = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it are
	// counted from its closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse %s: no command name", p)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("parse %s: %d fields", p, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse %s: %w", p, err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// PeakRSS returns the peak resident set size (VmHWM) of process pid in
// bytes (pid 0 means this process).
func PeakRSS(pid int) (int64, error) {
	p := "/proc/self/status"
	if pid != 0 {
		p = fmt.Sprintf("/proc/%d/status", pid)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse %s: %w", p, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("%s has no VmHWM", p)
}

// ResetPeakRSS sets VmHWM back to the current RSS, so that the next
// PeakRSS covers one measurement only. It needs the right to write
// /proc/<pid>/clear_refs (same user, Linux 4.0 or later); callers treat a
// failure as "peak since start".
func ResetPeakRSS(pid int) error {
	p := "/proc/self/clear_refs"
	if pid != 0 {
		p = fmt.Sprintf("/proc/%d/clear_refs", pid)
	}
	return os.WriteFile(p, []byte("5"), 0)
}

// Process is a child process whose standard error goes to a log file.
type Process struct {
	Name string
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs name with args in its own process group, standard output and
// error appended to logPath. env entries are added to this process's.
func Start(name, logPath, dir string, env []string, bin string, args ...string) (*Process, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM and waits up to grace before SIGKILL.
func (p *Process) Stop(grace time.Duration) {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
	}
}

// Tail returns the last n bytes of the process's log, for error messages.
func (p *Process) Tail(n int) string {
	b, _ := os.ReadFile(p.Log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// WaitLogLine polls the log until a JSON line has "msg" equal to msg and
// returns its fields. It fails when the process exits first.
func (p *Process) WaitLogLine(ctx context.Context, msg string) (map[string]any, error) {
	for {
		if fields, ok := findLogLine(p.Log, msg); ok {
			return fields, nil
		}
		if p.Exited() {
			return nil, fmt.Errorf("%s exited (%v) before logging %q: %s", p.Name, p.err, msg, p.Tail(2000))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s did not log %q: %w: %s", p.Name, msg, ctx.Err(), p.Tail(2000))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func findLogLine(path, msg string) (map[string]any, bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(msg)) {
			continue
		}
		var fields map[string]any
		if json.Unmarshal(line, &fields) == nil && fields["msg"] == msg {
			return fields, true
		}
	}
	return nil, false
}

// WaitTCP waits until addr accepts connections or the process exits.
func (p *Process) WaitTCP(ctx context.Context, addr string) error {
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("%s exited (%v) before listening on %s: %s", p.Name, p.err, addr, p.Tail(2000))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not listen on %s: %w: %s", p.Name, addr, ctx.Err(), p.Tail(2000))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// FreePort returns a loopback TCP port that was free a moment ago, for
// programs that cannot listen on port 0 and report the port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Group is a set of processes measured together, such as front, worker and
// NATS server of one deployment.
type Group []*Process

// Stop stops every process in reverse start order.
func (g Group) Stop(grace time.Duration) {
	for i := len(g) - 1; i >= 0; i-- {
		g[i].Stop(grace)
	}
}

// Usage is what a group used during one measurement.
type Usage struct {
	Name     string  `json:"name"`
	Pid      int     `json:"pid"`
	CPUSec   float64 `json:"cpu_seconds"`
	PeakRSSB int64   `json:"peak_rss_bytes"`
}

// Snapshot is the CPU time of each process in a group at one moment.
type Snapshot []time.Duration

// Snap reads the CPU time of every process.
func (g Group) Snap() Snapshot {
	s := make(Snapshot, len(g))
	for i, p := range g {
		s[i], _ = CPU(p.Pid())
	}
	return s
}

// ResetPeak resets the peak RSS of every process (best effort).
func (g Group) ResetPeak() {
	for _, p := range g {
		_ = ResetPeakRSS(p.Pid())
	}
}

// Since returns each process's usage since snapshot s.
func (g Group) Since(s Snapshot) []Usage {
	out := make([]Usage, len(g))
	for i, p := range g {
		now, _ := CPU(p.Pid())
		rss, _ := PeakRSS(p.Pid())
		out[i] = Usage{Name: p.Name, Pid: p.Pid(), CPUSec: (now - s[i]).Seconds(), PeakRSSB: rss}
	}
	return out
}

// LogPath joins dir and a file name for a process's log.
func LogPath(dir, name string) string { return filepath.Join(dir, name+".log") }
