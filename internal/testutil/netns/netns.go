// Package netns makes real network partitions on one machine, for the
// partition tests and bench/faults: a network namespace joined to the host
// by a veth pair in a private /30 that exists only on this machine. A
// control plane listening on the host side's address is reached from the
// namespace over the pair; taking the host side's link down cuts the
// namespace off (its packets go nowhere, the host's cannot leave), as a
// switch failure would, while the host itself still reaches that address,
// which stays local. It needs root (CAP_NET_ADMIN) and ip(8).
package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Link is a network namespace joined to the host by a veth pair.
type Link struct {
	NS           string
	HostIf, NSIf string
	HostIP, NSIP string
	cutAt        time.Time
}

// ip runs ip(8) with args.
func ip(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Available says why network namespaces cannot be made here (not root, no
// CAP_NET_ADMIN, no ip(8)), or nil when they can.
func Available() error {
	name := fmt.Sprintf("ryd-probe-%d", os.Getpid())
	if err := ip("netns", "add", name); err != nil {
		return fmt.Errorf("a real partition needs network namespaces (root or CAP_NET_ADMIN, and ip(8)): %w", err)
	}
	return ip("netns", "del", name)
}

// New makes namespace number n (0 to 63) with its veth pair in the /30
// 10.213.7.4n/30 (host .4n+1, namespace .4n+2), both ends up. Names carry
// this process's pid, so that two processes never share a namespace; two
// processes using the same n at once would share the addresses, so each
// user takes its own range of n. Close removes everything.
func New(n int) (*Link, error) {
	if n < 0 || n > 63 {
		return nil, fmt.Errorf("netns: link number %d out of 0..63", n)
	}
	id := fmt.Sprintf("%d%d", os.Getpid()%100000, n)
	l := &Link{
		NS:     "ryd-part-" + id,
		HostIf: "rydh" + id, NSIf: "rydn" + id,
		HostIP: fmt.Sprintf("10.213.7.%d", 4*n+1), NSIP: fmt.Sprintf("10.213.7.%d", 4*n+2),
	}
	for _, args := range [][]string{
		{"netns", "add", l.NS},
		{"link", "add", l.HostIf, "type", "veth", "peer", "name", l.NSIf},
		{"link", "set", l.NSIf, "netns", l.NS},
		{"addr", "add", l.HostIP + "/30", "dev", l.HostIf},
		{"link", "set", l.HostIf, "up"},
		{"-n", l.NS, "addr", "add", l.NSIP + "/30", "dev", l.NSIf},
		{"-n", l.NS, "link", "set", l.NSIf, "up"},
		{"-n", l.NS, "link", "set", "lo", "up"},
	} {
		if err := ip(args...); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

// Close removes the namespace and the pair, whatever state they are in.
// Deleting the namespace deletes its end of the pair, and with it the
// host's end; the explicit delete covers a failure before the move.
func (l *Link) Close() {
	_ = exec.Command("ip", "netns", "del", l.NS).Run()
	_ = exec.Command("ip", "link", "del", l.HostIf).Run()
}

// Cut takes the host's end of the link down: the partition starts.
func (l *Link) Cut() error {
	if err := ip("link", "set", l.HostIf, "down"); err != nil {
		return err
	}
	l.cutAt = time.Now()
	return nil
}

// Heal brings the link back and returns how long the partition lasted.
func (l *Link) Heal() (time.Duration, error) {
	if l.cutAt.IsZero() {
		return 0, errors.New("netns: Heal without Cut")
	}
	if err := ip("link", "set", l.HostIf, "up"); err != nil {
		return 0, err
	}
	return time.Since(l.cutAt), nil
}

// Command is name with args run inside the namespace: ip netns exec joins
// it and execs name, so the process started is name itself.
func (l *Link) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", l.NS, name}, args...)...)
}
