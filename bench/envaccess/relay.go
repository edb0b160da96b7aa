package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// relayArg runs this binary as one bare relay of the chain (relayChain).
const relayArg = "-relay"

// relayChainLen is the number of relays a forwarded byte passes: the CLI,
// the control plane and the runner.
const relayChainLen = 3

// relayChain starts relayChainLen bare relays, each its own process (as
// the CLI, the control plane and the runner are), chained to target. It
// returns the first relay's address, the relays' pids, and a function
// that stops them. The chain is the baseline of a port forward: the same
// hops through loopback sockets and processes, with nothing else done.
func relayChain(ctx context.Context, target string) (string, []int, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, nil, err
	}
	var (
		stops []func()
		pids  []int
	)
	stop := func() {
		for _, s := range stops {
			s()
		}
	}
	to := target
	for range relayChainLen {
		cmd := exec.CommandContext(ctx, self, relayArg, to)
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			stop()
			return "", nil, nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			stop()
			return "", nil, nil, err
		}
		if err := cmd.Start(); err != nil {
			stop()
			return "", nil, nil, fmt.Errorf("start a relay: %w", err)
		}
		stops = append(stops, func() { in.Close(); cmd.Wait() })
		pids = append(pids, cmd.Process.Pid)
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			stop()
			return "", nil, nil, fmt.Errorf("a relay's address: %w", err)
		}
		to = strings.TrimSpace(line)
	}
	return to, pids, stop, nil
}

// relay is a bare relay's main: it prints the address it listens on, and
// copies each connection to a new one to `to` and back (io.Copy between
// TCP connections splices), half-closes passed on, until its stdin closes.
func relay(to string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			d, err := net.Dial("tcp", to)
			if err != nil {
				fmt.Fprintln(os.Stderr, "envaccess relay:", err)
				return
			}
			defer d.Close()
			var wg sync.WaitGroup
			for _, p := range [][2]*net.TCPConn{{d.(*net.TCPConn), c.(*net.TCPConn)}, {c.(*net.TCPConn), d.(*net.TCPConn)}} {
				wg.Go(func() {
					io.Copy(p[0], p[1])
					p[0].CloseWrite()
				})
			}
			wg.Wait()
		}()
	}
}
